"""Signals for the host project: what changed in the mirror, sent after commit.

Every signal is sent once per real change of the mirror, whichever path brought it
(the customer pull, a state refresh, a webhook, the answer to a push), from
``transaction.on_commit``: a rolled-back write sends nothing, and a receiver reads
committed rows. A repeated or older event, or a pull that finds nothing new, changes
nothing and so sends nothing. Receivers are called with ``send_robust``: an error in
one is logged (logger ``polar_sync.signals``) and neither stops the others nor fails
the sync. Do slow work (mail, HTTP) in a task of your own.

Every signal has ``customer_id`` (a :class:`uuid.UUID`, the primary key of
:class:`~polar_sync.models.Customer`). The rest:

==========================  ======================  =====================================
signal                      sender                  other arguments
==========================  ======================  =====================================
``customer_created``        ``Customer``            none
``customer_updated``        ``Customer``            ``changed``: frozenset of column names
``customer_deleted``        ``Customer``            none
``subscription_started``    ``StateSubscription``   ``subscription``: the new row
``subscription_ended``      ``StateSubscription``   ``subscription``: the row as it was
``benefit_granted``         ``StateBenefitGrant``   ``grant``: the new row
``benefit_revoked``         ``StateBenefitGrant``   ``grant``: the row as it was
``customer_state_changed``  ``CustomerState``       ``subscriptions_started``,
                                                    ``subscriptions_ended``,
                                                    ``benefits_granted``,
                                                    ``benefits_revoked`` (lists of rows)
==========================  ======================  =====================================
"""

from __future__ import annotations

from django.dispatch import Signal

customer_created = Signal()
customer_updated = Signal()
customer_deleted = Signal()
subscription_started = Signal()
subscription_ended = Signal()
benefit_granted = Signal()
benefit_revoked = Signal()
customer_state_changed = Signal()

__all__ = [
    "benefit_granted",
    "benefit_revoked",
    "customer_created",
    "customer_deleted",
    "customer_state_changed",
    "customer_updated",
    "subscription_ended",
    "subscription_started",
]
