"""Example: make a thumbnail of every image uploaded to a bucket.

Triggered by an object-store notification (`runner trigger add ... --bucket uploads`), it reads
the object with boto3's S3 client, shrinks it to at most 128x128 with Pillow and writes a JPEG
with the same key to $THUMBNAIL_BUCKET (default "thumbnails"). The S3 endpoint comes from
$S3_ENDPOINT (e.g. a local SeaweedFS), so the function needs network access to it
(`--network allow=HOST:PORT`). Build its package (boto3 and Pillow bundled) with build.py.
"""

import io
import os
from urllib.parse import unquote_plus

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from PIL import Image

SIZE = (128, 128)
# Keys for the store under names of our own (the runner reserves AWS_ACCESS_KEY_ID & co. for an
# execution role, as Lambda does); none given: unsigned requests, for a store without auth.
KEYS = {"aws_access_key_id": os.environ.get("S3_ACCESS_KEY"),
        "aws_secret_access_key": os.environ.get("S3_SECRET_KEY")}
s3 = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT") or None,
                  region_name=os.environ.get("AWS_REGION", "us-east-1"),
                  config=Config(
                      # Checksums only where S3 requires them: an unsigned streaming upload
                      # with a checksum trailer (boto3's default) is not every store's S3.
                      request_checksum_calculation="when_required",
                      **({} if KEYS["aws_access_key_id"] else {"signature_version": UNSIGNED})),
                  **(KEYS if KEYS["aws_access_key_id"] else {}))


def handler(event, context):
    made = []
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])  # S3 sends keys URL-encoded
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail(SIZE)
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=85)
        target = os.environ.get("THUMBNAIL_BUCKET", "thumbnails")
        s3.put_object(Bucket=target, Key=key, Body=out.getvalue(), ContentType="image/jpeg")
        made.append({"bucket": target, "key": key, "size": list(image.size)})
        print(f"thumbnail {bucket}/{key} -> {target}/{key} {image.size}")
    return {"thumbnails": made}
