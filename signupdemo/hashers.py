"""Password hashing: Argon2id at the parameters OWASP recommends."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class OWASPArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with 19 MiB of memory, 2 passes and 1 lane (OWASP's Password
    Storage Cheat Sheet, first of its equivalent Argon2id settings).

    Memory-hard: each guess costs an attacker's GPU 19 MiB as it costs us, which
    is what makes Argon2id stronger than PBKDF2 for the same time. It takes
    about 17 ms on one core. Django's own Argon2 defaults (100 MiB, 8 lanes)
    take about 100 ms on a 2-core machine and PBKDF2 at 1.5 million iterations
    340 ms: most of a signup request, and of a login. The algorithm name stays
    "argon2", so a hash made with other parameters still verifies and is
    re-hashed with these at the next login.
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
