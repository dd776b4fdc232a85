// aws-sdk-js v3 driver of the conformance matrix.
//
// Reads one JSON request per line on stdin, performs it with @aws-sdk/client-s3
// (and lib-storage, s3-request-presigner, s3-presigned-post) as a user's
// program would, and answers one JSON line on stdout:
// {"ok": true, "result": ...} or {"ok": false, "error": "..."}, as
// testdata/boto3_ops.py does. The endpoint comes from OSP_ENDPOINT, the keys
// and region from the usual AWS_* variables. Certificate verification is off
// (self-signed test certificate): the SDK's https agent does not verify, and
// fetch, which posts the forms, runs with NODE_TLS_REJECT_UNAUTHORIZED=0.
//
// The tests copy this file with package.json and package-lock.json to .cache/js
// and install the packages there with npm ci.
import { createReadStream } from "node:fs";
import { Agent } from "node:https";
import { createInterface } from "node:readline";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import {
  S3Client, CreateBucketCommand, ListBucketsCommand, PutObjectCommand, GetObjectCommand,
  HeadObjectCommand, CopyObjectCommand, DeleteObjectCommand, DeleteObjectsCommand,
  DeleteBucketCommand, paginateListObjectsV2,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";

const client = new S3Client({
  endpoint: process.env.OSP_ENDPOINT,
  region: process.env.AWS_REGION || "us-east-1",
  forcePathStyle: true,
  maxAttempts: 1,
  requestHandler: { httpsAgent: new Agent({ rejectUnauthorized: false }), requestTimeout: 60000 },
});

// Keys are given as they are: the SDK escapes them in the request path. The
// file goes as a stream, as programs upload files: the SDK then sends it
// aws-chunked with a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER, its
// default since 2025), over http too. (lib-storage's parts below are
// buffers: a hex SHA-256 and the CRC32 in a header.)
const put = async (a) => {
  await client.send(new PutObjectCommand({ Bucket: a.bucket, Key: a.key, Body: createReadStream(a.file) }));
};

// lib-storage's Upload: multipart in 5 MiB parts (its default), as users
// upload big files.
const putMultipart = async (a) => {
  const body = await readFile(a.file);
  await new Upload({ client, params: { Bucket: a.bucket, Key: a.key, Body: body }, partSize: 5 << 20, queueSize: 2 }).done();
};

const getObject = async (bucket, key, range) => {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }));
  return Buffer.from(await out.Body.transformToByteArray());
};

const get = async (a) => {
  const data = await getObject(a.bucket, a.key);
  await mkdir(dirname(a.file), { recursive: true });
  await writeFile(a.file, data);
};

const listObjects = async (a) => {
  const keys = [], prefixes = [];
  const input = { Bucket: a.bucket, Prefix: a.prefix };
  if (a.delimiter) input.Delimiter = a.delimiter;
  for await (const page of paginateListObjectsV2({ client }, input)) {
    for (const o of page.Contents ?? []) keys.push(o.Key);
    for (const p of page.CommonPrefixes ?? []) prefixes.push(p.Prefix);
  }
  return { keys, prefixes };
};

const walk = async (dir) => {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
};

// The POST policy of a browser-form upload, in createPresignedPost's terms:
// Fields become the form's fields (and eq conditions), Conditions add the
// content-length-range and the starts-with on Content-Type.
const presignPost = async (a) => {
  const p = a.policy;
  const fields = { "Content-Type": p.content_type };
  const conditions = [["content-length-range", p.min_size, p.max_size]];
  if (p.type_prefix) conditions.push(["starts-with", "$Content-Type", p.type_prefix]);
  for (const [k, v] of Object.entries(p.meta ?? {})) fields["x-amz-meta-" + k] = v;
  if (p.status) fields.success_action_status = p.status;
  const { url, fields: out } = await createPresignedPost(client, {
    Bucket: a.bucket, Key: p.key, Conditions: conditions, Fields: fields, Expires: p.expires_seconds,
  });
  return { url, fields: Object.entries(out) };
};

// postForm sends the form from node itself, as a browser would: fetch with a
// FormData body, the file last.
const postForm = async (a) => {
  const form = new FormData();
  for (const [k, v] of a.fields) form.append(k, v);
  const data = await readFile(a.file);
  form.append("file", new Blob([data], { type: a.content_type }), a.filename);
  const resp = await fetch(a.url, { method: "POST", body: form, redirect: "manual" });
  const headers = {};
  resp.headers.forEach((v, k) => { headers[k] = v; });
  return { status: resp.status, headers, body: await resp.text() };
};

const OPS = {
  version: async () => {
    const pkg = JSON.parse(await readFile(new URL("./node_modules/@aws-sdk/client-s3/package.json", import.meta.url)));
    return { "client-s3": pkg.version, node: process.version };
  },
  make_bucket: async (a) => { await client.send(new CreateBucketCommand({ Bucket: a.bucket })); },
  list_buckets: async () => ((await client.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name),
  put,
  put_multipart: putMultipart,
  get,
  get_range: async (a) => {
    await writeFile(a.file, await getObject(a.bucket, a.key, `bytes=${a.first}-${a.last}`));
  },
  head: async (a) => (await client.send(new HeadObjectCommand({ Bucket: a.bucket, Key: a.key }))).ContentLength,
  copy: async (a) => {
    const src = encodeURIComponent(a.src).replace(/%2F/g, "/");
    await client.send(new CopyObjectCommand({ Bucket: a.bucket, Key: a.dst, CopySource: `${a.bucket}/${src}` }));
  },
  list_objects: listObjects,
  // The SDK has no sync: a program walks the tree and uploads each file,
  // lists and downloads each key.
  sync_up: async (a) => {
    for (const path of await walk(a.dir)) {
      await put({ bucket: a.bucket, key: a.prefix + relative(a.dir, path).split(sep).join("/"), file: path });
    }
  },
  sync_down: async (a) => {
    const { keys } = await listObjects({ bucket: a.bucket, prefix: a.prefix, delimiter: "" });
    for (const key of keys) {
      await get({ bucket: a.bucket, key, file: join(a.dir, key.slice(a.prefix.length)) });
    }
  },
  presign_get: async (a) => getSignedUrl(client, new GetObjectCommand({ Bucket: a.bucket, Key: a.key }), { expiresIn: 600 }),
  presign_put: async (a) => getSignedUrl(client, new PutObjectCommand({ Bucket: a.bucket, Key: a.key }), { expiresIn: 600 }),
  presign_post: presignPost,
  post_form: postForm,
  delete_batch: async (a) => {
    const out = await client.send(new DeleteObjectsCommand({
      Bucket: a.bucket, Delete: { Objects: a.keys.map((k) => ({ Key: k })) },
    }));
    if (out.Errors?.length) throw new Error("DeleteObjects errors: " + JSON.stringify(out.Errors));
  },
  delete: async (a) => { await client.send(new DeleteObjectCommand({ Bucket: a.bucket, Key: a.key })); },
  remove_bucket: async (a) => { await client.send(new DeleteBucketCommand({ Bucket: a.bucket })); },
};

const describe = (e) => {
  const status = e?.$metadata?.httpStatusCode;
  return `${e?.name ?? "Error"}${status ? ` (${status})` : ""}: ${e?.message ?? e}`;
};

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  let res;
  try {
    const req = JSON.parse(line);
    const op = OPS[req.op];
    if (!op) throw new Error(`unknown op ${req.op}`);
    const result = await op(req);
    res = { ok: true, result: result ?? null };
  } catch (e) {
    res = { ok: false, error: describe(e) };
  }
  process.stdout.write(JSON.stringify(res) + "\n");
}
