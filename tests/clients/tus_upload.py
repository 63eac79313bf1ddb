"""Uploads a file with tuspy, the stock tus client from PyPI, used as its documentation shows.

    python3 tus_upload.py ENDPOINT TOKEN FILE SHA256 CHUNK_BYTES

Sends the first half, then resumes with a new uploader on the same URL (which asks the server
for the offset with HEAD), with a sha1 Upload-Checksum on every chunk. Prints the upload URL.
"""
import os
import sys

from tusclient import client

endpoint, token, path, sha, chunk = sys.argv[1:6]
tus = client.TusClient(endpoint, headers={"Authorization": "Bearer " + token})
meta = {"sha256": sha, "filename": os.path.basename(path), "content_type": "image/jpeg"}
size = os.path.getsize(path)

first = tus.uploader(path, chunk_size=int(chunk), metadata=meta, upload_checksum=True)
first.upload(stop_at=size // 2)
assert first.offset >= size // 2, first.offset

resumed = tus.uploader(path, url=first.url, chunk_size=int(chunk), upload_checksum=True)
assert resumed.offset == first.offset, (resumed.offset, first.offset)
resumed.upload()
assert resumed.offset == size, (resumed.offset, size)
print(first.url)
