"""Test settings: the demo project's, with a token set and fast hashing."""

from project.settings import *  # noqa: F403

POLAR_SYNC = {
    "ACCESS_TOKEN": "polar_oat_test_token_0123456789",
    # Nothing listens on port 9 (discard): a test that forgets to mock HTTP fails fast.
    "SERVER": "http://127.0.0.1:9",
    "TIMEOUT": 2.0,
    "MAX_RETRIES": 2,
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
