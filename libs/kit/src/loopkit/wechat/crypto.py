"""Callback signatures and "safe mode" message encryption of the official account and WeCom.

Both platforms use the same scheme (WXBizMsgCrypt): SHA1 over the sorted token, timestamp, nonce
(and, for encrypted messages, the ciphertext); AES-256-CBC with the 43-character EncodingAESKey,
IV = the key's first 16 bytes, PKCS#7 padding to 32 bytes, and a plaintext of 16 random bytes,
a 4-byte big-endian length, the message, then the receiver id (appid or corp id).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# WeChat retries a callback within seconds; anything older than this is a replay or a wrong clock.
MAX_AGE_S = 300
_BLOCK = 32


class SignatureError(Exception):
    """The callback is forged, replayed or stale: answer 403 and do nothing."""


class DecryptError(Exception):
    """The ciphertext does not decrypt to a message for this receiver: answer 400."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str = "") -> str:
    parts = [token, timestamp, nonce] + ([encrypted] if encrypted else [])
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(
    token: str,
    given: str,
    timestamp: str,
    nonce: str,
    encrypted: str = "",
    *,
    now: float | None = None,
    max_age_s: int = MAX_AGE_S,
) -> None:
    """Raise SignatureError unless `given` signs these values and the timestamp is fresh."""
    expected = signature(token, timestamp, nonce, encrypted)
    if not hmac.compare_digest(expected, given.lower()):
        raise SignatureError("signature does not match")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureError("timestamp is not a number") from None
    current = int(time.time() if now is None else now)
    # Integers on both sides: a timestamp of hundreds of digits must not overflow a float.
    if abs(current - sent) > max_age_s:
        raise SignatureError(f"timestamp is more than {max_age_s} s away from now")


class MessageCrypto:
    """Encrypts and decrypts callback payloads for one receiver (an appid or a corp id)."""

    def __init__(self, token: str, encoding_aes_key: str, receiver_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        self.token = token
        self.receiver_id = receiver_id
        self._key = base64.b64decode(encoding_aes_key + "=")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def decrypt(self, encrypted: str) -> bytes:
        try:
            raw = base64.b64decode(encrypted, validate=True)
            decryptor = self._cipher().decryptor()
            plain = decryptor.update(raw) + decryptor.finalize()
        except ValueError as exc:
            raise DecryptError(f"not a valid ciphertext: {exc}") from None
        pad = plain[-1] if plain else 0
        if not 1 <= pad <= _BLOCK or len(plain) < 20 + pad:
            raise DecryptError("bad padding")
        body = plain[16:-pad]
        (length,) = struct.unpack(">I", body[:4])
        message, receiver = body[4 : 4 + length], body[4 + length :]
        if len(message) != length:
            raise DecryptError("length field does not match the message")
        if receiver.decode(errors="replace") != self.receiver_id:
            raise DecryptError("message is for another receiver")
        return message

    def encrypt(self, message: bytes, *, random_prefix: bytes | None = None) -> str:
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        body = prefix + struct.pack(">I", len(message)) + message + self.receiver_id.encode()
        pad = _BLOCK - len(body) % _BLOCK
        body += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode()

    def open(
        self,
        msg_signature: str,
        timestamp: str,
        nonce: str,
        encrypted: str,
        *,
        now: float | None = None,
    ) -> bytes:
        """Verify msg_signature over the ciphertext, then decrypt it."""
        check_signature(self.token, msg_signature, timestamp, nonce, encrypted, now=now)
        return self.decrypt(encrypted)

    def seal(self, message: bytes, timestamp: str, nonce: str) -> dict[str, str]:
        """An encrypted reply: the fields of the <xml> envelope WeChat expects back."""
        encrypted = self.encrypt(message)
        return {
            "Encrypt": encrypted,
            "MsgSignature": signature(self.token, timestamp, nonce, encrypted),
            "TimeStamp": timestamp,
            "Nonce": nonce,
        }
