'use strict';

// The page lists a bucket and uploads files to it through the S3 proxy, which
// is another origin than the page's: every request to the proxy is a CORS
// request, allowed by the proxy's CORS policy. This page's own server presigns
// each of them (api/presign/...) with a client key of its configuration; the
// page gets URLs and form fields, never a secret.

const $ = (id) => document.getElementById(id);

// requestID is S3's x-amz-request-id of an answer (some servers send it twice).
const requestID = (resp) => (resp.headers.get('x-amz-request-id') || '').split(',')[0].trim();

// api calls an endpoint of this page's server.
async function api(path, body) {
  const init = body === undefined ? {} : {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(body),
  };
  const resp = await fetch(path, init);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    throw new Error(`${path}: ${data.error || resp.status + ' ' + resp.statusText}`);
  }
  return data;
}

// proxyFetch sends a request to the proxy. A request the browser refuses to
// show the page (the proxy down, or its CORS policy not allowing this origin)
// fails with a TypeError that says nothing: say what it may be.
async function proxyFetch(url, init) {
  try {
    return await fetch(url, init);
  } catch (e) {
    throw new Error(`no answer this page may read from ${new URL(url).origin} (${e.message}): ` +
      `the proxy is unreachable, or its CORS policy does not allow this page's origin, ${location.origin}`);
  }
}

function parseXML(text) {
  const doc = new DOMParser().parseFromString(text, 'application/xml');
  return doc.getElementsByTagName('parsererror').length ? null : doc;
}

// child is the text of the first element named name under el, or ''.
function child(el, name) {
  const c = el && el.getElementsByTagName(name)[0];
  return c ? c.textContent : '';
}

// s3Failure reads an S3 error answer: its status, and the Code and Message of
// its XML body (which the page may read because the proxy's CORS policy
// allows this origin on errors too).
async function s3Failure(resp) {
  const text = await resp.text();
  const doc = text ? parseXML(text) : null;
  const err = doc && doc.getElementsByTagName('Error')[0];
  let msg = `${resp.status} ${resp.statusText}`.trim();
  if (err) {
    msg += ` ${child(err, 'Code')}: ${child(err, 'Message')}`;
  } else if (text) {
    msg += `: ${text.slice(0, 300)}`;
  }
  const id = requestID(resp);
  if (id) {
    msg += ` (request ${id})`;
  }
  return new Error(msg);
}

// log adds a line to the log, newest first; data-op and data-state say what
// it is about and how it went.
function log(op, ok, text) {
  const li = document.createElement('li');
  li.dataset.op = op;
  li.dataset.state = ok ? 'ok' : 'error';
  li.textContent = `${new Date().toLocaleTimeString()} ${ok ? '✓' : '✗'} ${text}`;
  $('log').prepend(li);
}

const uploaded = new Set(); // keys uploaded from this page, highlighted in the list

// list lists the bucket with a presigned ListObjectsV2 and shows its objects.
async function list() {
  const p = await api('api/presign/list', {});
  const resp = await proxyFetch(p.url);
  if (!resp.ok) {
    throw await s3Failure(resp);
  }
  const doc = parseXML(await resp.text());
  if (!doc) {
    throw new Error('the listing is not XML');
  }
  const body = $('objects').tBodies[0];
  body.replaceChildren();
  const contents = [...doc.getElementsByTagName('Contents')];
  for (const c of contents) {
    const tr = document.createElement('tr');
    const key = child(c, 'Key');
    tr.dataset.key = key;
    tr.dataset.size = child(c, 'Size');
    if (uploaded.has(key)) {
      tr.className = 'new';
    }
    for (const [text, cls] of [[key, ''], [child(c, 'Size'), 'num'], [child(c, 'LastModified'), '']]) {
      const td = document.createElement('td');
      td.textContent = text;
      td.className = cls;
      tr.append(td);
    }
    body.append(tr);
  }
  const more = child(doc, 'IsTruncated') === 'true' ? ', the first of more' : '';
  $('listing-note').textContent = `${contents.length} object${contents.length === 1 ? '' : 's'}${more}.`;
  return `listed ${contents.length} object${contents.length === 1 ? '' : 's'}`;
}

// upload sends the chosen file to the proxy with a presigned PUT or POST.
async function upload(op) {
  const file = $('file').files[0];
  if (!file) {
    throw new Error('choose a file first');
  }
  const key = $('key').value.trim() || file.name;
  const type = file.type || 'application/octet-stream';
  if (op === 'put') {
    const p = await api('api/presign/put', {key, content_type: type});
    const resp = await proxyFetch(p.url, {method: 'PUT', headers: p.headers, body: file});
    if (!resp.ok) {
      throw await s3Failure(resp);
    }
    uploaded.add(key);
    return `PUT ${key} (${file.size} bytes): ${resp.status}, ETag ${resp.headers.get('ETag')}, ` +
      `request ${requestID(resp)}`;
  }
  const p = await api('api/presign/post', {key, content_type: type});
  const form = new FormData();
  for (const [name, value] of Object.entries(p.fields)) {
    form.append(name, value);
  }
  form.append('file', file); // last: S3 takes the fields before it
  const resp = await proxyFetch(p.url, {method: 'POST', body: form});
  if (!resp.ok) {
    throw await s3Failure(resp);
  }
  // 201 (success_action_status): a PostResponse with Location, Key and ETag;
  // a server that ignores success_action_status may answer 200 or 204 without.
  const text = await resp.text();
  const doc = text ? parseXML(text) : null;
  const etag = child(doc, 'ETag') || resp.headers.get('ETag');
  const location = child(doc, 'Location') || resp.headers.get('Location');
  uploaded.add(key);
  return `POST ${key} (${file.size} bytes): ${resp.status}` + (etag ? `, ETag ${etag}` : '') +
    (location ? `, Location ${location}` : '') + `, request ${requestID(resp)}`;
}

// run runs an operation with the buttons off, and logs how it went.
async function run(op, fn) {
  const buttons = document.querySelectorAll('button');
  buttons.forEach((b) => { b.disabled = true; });
  try {
    log(op, true, await fn());
    return true;
  } catch (e) {
    log(op, false, e.message);
    return false;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

async function uploadAndList(op) {
  if (await run(op, () => upload(op))) {
    await run('list', list);
  }
}

async function main() {
  $('origin').textContent = location.origin;
  $('put').addEventListener('click', () => uploadAndList('put'));
  $('post').addEventListener('click', () => uploadAndList('post'));
  $('refresh').addEventListener('click', () => run('list', list));
  const ok = await run('config', async () => {
    const c = await api('api/config');
    $('bucket').textContent = c.bucket;
    $('proxy').textContent = c.proxy_url;
    $('key-id').textContent = c.access_key_id;
    document.title = `${c.bucket}: osproxy`;
    return `bucket ${c.bucket} at ${c.proxy_url}, presigned with ${c.access_key_id} for ${c.expires}`;
  });
  if (ok) {
    await run('list', list);
  }
}

main();
