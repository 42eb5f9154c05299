"""The multipart body of a proof upload as bench/load's donors send it (a note and a JPEG), shared
by the locustfile and bench/photos/profile_upload.py. Standard library only: locust imports it."""
from __future__ import annotations

import uuid


def multipart(photo: bytes, note: str) -> tuple[bytes, str]:
    """(body, Content-Type) of a form with `note` and `photo` (delivery.jpg, image/jpeg)."""
    boundary = "----wxyload" + uuid.uuid4().hex
    body = b"".join([
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n".encode(),
        note.encode(), b"\r\n",
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; "
        f"filename=\"delivery.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".encode(),
        photo, b"\r\n", f"--{boundary}--\r\n".encode()])
    return body, f"multipart/form-data; boundary={boundary}"
