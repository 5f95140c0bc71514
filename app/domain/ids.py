"""Opaque public identifiers: a type prefix and random base62 text (clients never parse them)."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_BASE = len(_ALPHABET)


def new_id(prefix: str, length: int = 20) -> str:
    """A new identifier like `ord_7Hq2...`; 20 base62 characters carry about 119 bits.

    One random number below 62**length, written in base62: the same uniform choice among all
    strings as drawing each character with secrets.choice, but one read of the OS's randomness
    instead of one per character (that was most of the CPU of every insert of an id).
    """
    number = secrets.randbelow(_BASE**length)
    chars = []
    for _ in range(length):
        number, digit = divmod(number, _BASE)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(chars)
