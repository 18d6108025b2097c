"""The seed's example client ("Example Client (Python)" of the earlier server's README), with
its logic unchanged: init, every part in order in chunks of 50 MB, one complete call, then
print the final_path of complete's answer. Changes: the settings come from the environment
(API_KEY, BASE_URL, FILE_PATH), one upload instead of two, the seed's prints go to stderr,
and a last line on stdout reports what complete answered (benchdelivery reads it)."""
import json
import os
import sys
import time

import requests

API_KEY = os.environ["API_KEY"]
BASE_URL = os.environ["BASE_URL"]
FILE_PATH = os.environ["FILE_PATH"]
CHUNK_SIZE = 50 * 1024 * 1024  # 50MB


def upload_file(file_path, target_path=None):
    """
    Upload a file to the chunked upload server.

    Args:
        file_path: Local path to the file
        target_path: Optional remote path (e.g., "videos/2024")
    """
    file_size = os.path.getsize(file_path)
    filename = os.path.basename(file_path)

    # Include target path in filename if specified
    remote_filename = f"{target_path}/{filename}" if target_path else filename

    # 1. Initialize upload
    resp = requests.post(
        f"{BASE_URL}/upload/init",
        headers={"X-API-Key": API_KEY},
        json={"filename": remote_filename, "total_size": file_size}
    )
    data = resp.json()
    file_id = data["file_id"]
    parts = data["parts"]
    print(f"Upload initialized: {file_id}, {len(parts)} parts", file=sys.stderr)

    # 2. Upload each part
    with open(file_path, "rb") as f:
        for part_info in parts:
            part_num = part_info["part"]
            token = part_info["token"]

            # Read chunk
            chunk = f.read(CHUNK_SIZE)
            if not chunk:
                break

            # Upload
            resp = requests.put(
                f"{BASE_URL}/upload/{file_id}/part/{part_num}",
                headers={"Authorization": f"Bearer {token}"},
                data=chunk
            )
            result = resp.json()
            print(f"Part {part_num}: {result['uploaded_parts']}/{result['total_parts']}", file=sys.stderr)
    last_part = time.monotonic()

    # 3. Complete upload
    resp = requests.post(
        f"{BASE_URL}/upload/{file_id}/complete",
        headers={"X-API-Key": API_KEY}
    )
    after = time.monotonic() - last_part
    print(f"Upload complete: {resp.json()['final_path']}", file=sys.stderr)
    print(json.dumps({"file_id": file_id, "complete_status": resp.status_code,
                      "final_path": resp.json().get("final_path"), "after_last_part_seconds": after}))


if __name__ == "__main__":
    upload_file(FILE_PATH)
