"""boto3 driver of the conformance matrix.

Reads one JSON request per line on stdin, performs it with boto3 as a user's
program would, and answers one JSON line on stdout:
{"ok": true, "result": ...} or {"ok": false, "error": "..."}.
The endpoint comes from OSP_ENDPOINT, the keys and region from the usual AWS_*
variables. Certificate verification is off (self-signed test certificate).
"""
import json
import os
import sys
import traceback
import urllib3

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

urllib3.disable_warnings()

client = boto3.client(
    "s3",
    endpoint_url=os.environ["OSP_ENDPOINT"],
    verify=False,
    config=Config(
        # "s3" is AWS Signature Version 2, as boto2-era programs sign.
        signature_version=os.environ.get("OSP_SIGNATURE_VERSION", "s3v4"),
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    ),
)
# boto3's managed transfers: multipart above 8 MiB in 8 MiB parts (the default).
transfer = TransferConfig()


def make_bucket(a):
    client.create_bucket(Bucket=a["bucket"])


def list_buckets(a):
    return [b["Name"] for b in client.list_buckets()["Buckets"]]


def put(a):
    with open(a["file"], "rb") as f:
        client.put_object(Bucket=a["bucket"], Key=a["key"], Body=f)


def put_multipart(a):
    client.upload_file(a["file"], a["bucket"], a["key"], Config=transfer)


def get(a):
    client.download_file(a["bucket"], a["key"], a["file"], Config=transfer)


def get_range(a):
    out = client.get_object(Bucket=a["bucket"], Key=a["key"], Range="bytes=%d-%d" % (a["first"], a["last"]))
    data = out["Body"].read()
    with open(a["file"], "wb") as f:
        f.write(data)


def head(a):
    out = client.head_object(Bucket=a["bucket"], Key=a["key"])
    return out["ContentLength"]


def copy(a):
    client.copy_object(Bucket=a["bucket"], Key=a["dst"], CopySource={"Bucket": a["bucket"], "Key": a["src"]})


def list_objects(a):
    keys, prefixes = [], []
    kw = {"Bucket": a["bucket"], "Prefix": a["prefix"]}
    if a["delimiter"]:
        kw["Delimiter"] = a["delimiter"]
    for page in client.get_paginator("list_objects_v2").paginate(**kw):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return {"keys": keys, "prefixes": prefixes}


def sync_up(a):
    # boto3 has no sync: a program walks the tree and uploads each file.
    root = a["dir"]
    for d, _, files in os.walk(root):
        for name in files:
            path = os.path.join(d, name)
            key = a["prefix"] + os.path.relpath(path, root).replace(os.sep, "/")
            client.upload_file(path, a["bucket"], key, Config=transfer)


def sync_down(a):
    listing = list_objects({"bucket": a["bucket"], "prefix": a["prefix"], "delimiter": ""})
    for key in listing["keys"]:
        path = os.path.join(a["dir"], key[len(a["prefix"]):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        client.download_file(a["bucket"], key, path, Config=transfer)


def presign_get(a):
    return client.generate_presigned_url("get_object", Params={"Bucket": a["bucket"], "Key": a["key"]}, ExpiresIn=600)


def presign_put(a):
    return client.generate_presigned_url("put_object", Params={"Bucket": a["bucket"], "Key": a["key"]}, ExpiresIn=600)


def presign_post(a):
    # generate_presigned_post adds the bucket, key and signing conditions;
    # the other fields need a condition each, given here as users do.
    p = a["policy"]
    fields = {"Content-Type": p["content_type"]}
    conditions = [["content-length-range", p["min_size"], p["max_size"]]]
    if p.get("type_prefix"):
        conditions.append(["starts-with", "$Content-Type", p["type_prefix"]])
    else:
        conditions.append({"Content-Type": p["content_type"]})
    for k, v in (p.get("meta") or {}).items():
        fields["x-amz-meta-" + k] = v
        conditions.append({"x-amz-meta-" + k: v})
    if p.get("status"):
        fields["success_action_status"] = p["status"]
        conditions.append({"success_action_status": p["status"]})
    out = client.generate_presigned_post(
        a["bucket"], p["key"], Fields=fields, Conditions=conditions, ExpiresIn=p["expires_seconds"])
    return {"url": out["url"], "fields": list(out["fields"].items())}


# Forms are posted with urllib3, which botocore brings along and which builds
# the multipart body of requests.post(url, data=fields, files={"file": ...}),
# the post of boto3's documentation: the fields in order, the file last.
http = urllib3.PoolManager(cert_reqs="CERT_NONE")


def post_form(a):
    with open(a["file"], "rb") as f:
        data = f.read()
    fields = [(k, v) for k, v in a["fields"]] + [("file", (a["filename"], data, a["content_type"]))]
    r = http.request("POST", a["url"], fields=fields, redirect=False, retries=False, timeout=60.0)
    return {"status": r.status, "headers": {k.lower(): v for k, v in r.headers.items()},
            "body": r.data.decode("utf-8", "replace")}


def delete_batch(a):
    out = client.delete_objects(Bucket=a["bucket"], Delete={"Objects": [{"Key": k} for k in a["keys"]]})
    errors = out.get("Errors", [])
    if errors:
        raise RuntimeError("DeleteObjects errors: %r" % errors)


def delete(a):
    client.delete_object(Bucket=a["bucket"], Key=a["key"])


def remove_bucket(a):
    client.delete_bucket(Bucket=a["bucket"])


def version(a):
    return {"boto3": boto3.__version__, "botocore": botocore.__version__}


OPS = {f.__name__: f for f in [
    make_bucket, list_buckets, put, put_multipart, get, get_range, head, copy, list_objects,
    sync_up, sync_down, presign_get, presign_put, presign_post, post_form, delete_batch, delete, remove_bucket, version,
]}


def main():
    for line in sys.stdin:
        req = json.loads(line)
        try:
            res = {"ok": True, "result": OPS[req["op"]](req)}
        except Exception as e:  # reported to the Go side, which decides
            res = {"ok": False, "error": "%s: %s" % (type(e).__name__, e), "trace": traceback.format_exc(limit=3)}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
