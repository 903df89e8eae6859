"""A password hasher that counts its work, to measure what a login attempt costs the server."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher

# One entry per password hashed: the iterations it cost.
HASHED: list[int] = []


class CountingHasher(PBKDF2PasswordHasher):
    """PBKDF2, as in production, with fewer iterations and a record of every hash it computes."""

    algorithm = "pbkdf2_sha256_counted"
    iterations = 2_000

    def encode(self, password: str, salt: str, iterations: int | None = None) -> str:
        HASHED.append(iterations or self.iterations)
        return super().encode(password, salt, iterations)
