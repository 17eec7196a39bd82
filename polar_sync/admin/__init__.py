"""polar_sync in the Django admin: the customer mirror, the sync log and the status page.

The mirror is read-only here (it belongs to Polar); actions reach Polar through
the tasks and services, each behind the Django permission it needs.
"""

from .catalog import BenefitAdmin, ProductAdmin
from .customers import CustomerAdmin
from .logs import PushOutboxAdmin, SyncRunAdmin, WebhookEventAdmin
from .members import MemberAdmin, MemberInline
from .sidebar import install_status_entry
from .users import PolarCustomerInline, install_user_inline

__all__ = [
    "BenefitAdmin",
    "CustomerAdmin",
    "MemberAdmin",
    "MemberInline",
    "PolarCustomerInline",
    "ProductAdmin",
    "PushOutboxAdmin",
    "SyncRunAdmin",
    "WebhookEventAdmin",
    "install_status_entry",
    "install_user_inline",
]
