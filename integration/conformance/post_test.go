package conformance

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Presigned POST (S3 POST Object, the browser-form upload): each client that
// has a POST presigner (boto3 generate_presigned_post, aws-sdk-js v3
// createPresignedPost, minio-go PresignedPostPolicy, aws-sdk-go-v2
// PresignPostObject) makes the policy and its form fields itself, and the
// form is posted as its users post it (boto3's urllib3, node's fetch with
// FormData, Go's mime/multipart), the file last. Two steps of the matrix:
//
//   - presign-post: a few KiB of text/plain under a starts-with on
//     Content-Type, answered 204 (the default), and 5 MiB under
//     success_action_status 201, answered with the PostResponse XML; each with
//     content-length-range and an x-amz-meta-* field. The object's bytes,
//     Content-Type and metadata are read back through the target (the proxy
//     or versitygw), and the answer's Location, Bucket, Key and ETag must
//     name the target: the proxy's URL, not versitygw's, through the proxy.
//   - post-denied: a file over content-length-range's max (400
//     EntityTooLarge), an expired policy (403 AccessDenied), a Content-Type
//     changed after signing so that the policy's condition fails (403
//     AccessDenied), a changed signature (403 SignatureDoesNotMatch); nothing
//     may be stored.
//
// Each run records the status and S3 error code of every answer
// (run.answers); TestMatrix compares the proxy's with versitygw's own answers
// to the same forms, signed with versitygw's keys in the direct run.

// postPolicy is what a presigned POST allows, given to each client to express
// with its own presigner.
type postPolicy struct {
	Key         string            `json:"key"`          // the key condition (eq) and field
	ContentType string            `json:"content_type"` // the Content-Type field
	TypePrefix  string            `json:"type_prefix"`  // a starts-with condition on Content-Type when set
	Meta        map[string]string `json:"meta"`         // x-amz-meta-<name> fields with eq conditions
	MinSize     int64             `json:"min_size"`     // content-length-range
	MaxSize     int64             `json:"max_size"`
	Status      string            `json:"status"`          // success_action_status field and condition when set
	Expires     int               `json:"expires_seconds"` // from now; negative: already expired
}

// postForm is a presigner's answer: where to post and the form's fields, in
// the presigner's order (the file goes after them).
type postForm struct {
	URL    string      `json:"url"`
	Fields [][2]string `json:"fields"`
}

// field returns the value of the field named name (case-insensitively).
func (f *postForm) field(name string) (string, bool) {
	for _, kv := range f.Fields {
		if strings.EqualFold(kv[0], name) {
			return kv[1], true
		}
	}
	return "", false
}

// set changes the value of the field named name (case-insensitively), or
// adds the field.
func (f *postForm) set(name, value string) {
	for i, kv := range f.Fields {
		if strings.EqualFold(kv[0], name) {
			f.Fields[i][1] = value
			return
		}
	}
	f.Fields = append(f.Fields, [2]string{name, value})
}

// clone is a deep copy of f.
func (f *postForm) clone() *postForm {
	return &postForm{URL: f.URL, Fields: append([][2]string(nil), f.Fields...)}
}

// postFile is the file part of a form.
type postFile struct {
	Path        string // its content
	Name        string // its filename parameter
	ContentType string // its part's Content-Type
}

// postAnswer is the server's answer to a posted form.
type postAnswer struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"` // lower-case names
	Body    string            `json:"body"`
}

func (a *postAnswer) header(name string) string { return a.Headers[strings.ToLower(name)] }

// s3Error is the answer's S3 error code and message, if it is an S3 error.
func (a *postAnswer) s3Error() (code, message string) {
	var e struct{ Code, Message string }
	if xml.Unmarshal([]byte(a.Body), &e) == nil {
		return e.Code, e.Message
	}
	return "", ""
}

// brief is the answer as the comparison sees it: the status and, for an
// error, the S3 error code.
func (a *postAnswer) brief() string {
	if code, _ := a.s3Error(); code != "" {
		return fmt.Sprintf("%d %s", a.Status, code)
	}
	return fmt.Sprint(a.Status)
}

func (a *postAnswer) String() string {
	if code, msg := a.s3Error(); code != "" {
		return fmt.Sprintf("%d %s: %s", a.Status, code, msg)
	}
	if a.Status/100 == 2 || a.Body == "" {
		return fmt.Sprint(a.Status)
	}
	return fmt.Sprintf("%d %s", a.Status, truncate(strings.Join(strings.Fields(a.Body), " "), 300))
}

// sortedFields is a presigner's map of fields in a stable order: key first,
// then by name.
func sortedFields(m map[string]string) [][2]string {
	var out [][2]string
	for k, v := range m {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if ki, kj := out[i][0] == "key", out[j][0] == "key"; ki != kj {
			return ki
		}
		return out[i][0] < out[j][0]
	})
	return out
}

// postMultipart posts form as Go programs do: mime/multipart fields, then the
// file, in a body of known length. It does not follow redirects.
func postMultipart(ctx context.Context, hc *http.Client, f *postForm, file postFile) (*postAnswer, error) {
	content, err := os.ReadFile(file.Path)
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, kv := range f.Fields {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, file.Name))
	h.Set("Content-Type", file.ContentType)
	pw, err := mw.CreatePart(h)
	if err != nil {
		return nil, err
	}
	if _, err := pw.Write(content); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL, &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	a := &postAnswer{Status: resp.StatusCode, Headers: map[string]string{}, Body: string(b)}
	for k := range resp.Header {
		a.Headers[strings.ToLower(k)] = resp.Header.Get(k)
	}
	return a, nil
}

// The objects of the POST steps.
const (
	postSmallKey  = "post/small k=v a+b.txt"
	postBigKey    = "post/big 100%.bin"
	postSmallSize = 4 << 10
	postBigSize   = 5 << 20
	postDenied    = "post/denied/"
)

// postUpload is one upload of presign-post.
type postUpload struct {
	name   string // in the comparison
	policy postPolicy
	file   postFile
	want   []byte
	status int
}

func (r *run) postUploads() []postUpload {
	return []postUpload{{
		name: "small, 204",
		policy: postPolicy{Key: postSmallKey, ContentType: "text/plain", TypePrefix: "text/",
			Meta: map[string]string{"origin": "conformance small"}, MinSize: 1, MaxSize: 1 << 20, Expires: 600},
		file:   postFile{Path: r.data.postSmallFile(), Name: "small.txt", ContentType: "text/plain"},
		want:   r.data.postSmall,
		status: http.StatusNoContent,
	}, {
		name: "5MiB, 201",
		policy: postPolicy{Key: postBigKey, ContentType: "application/octet-stream", TypePrefix: "application/",
			Meta: map[string]string{"origin": "conformance big", "size": "5MiB"}, MinSize: 1, MaxSize: 10 << 20,
			Status: "201", Expires: 600},
		file:   postFile{Path: r.data.postBigFile(), Name: "big.bin", ContentType: "application/octet-stream"},
		want:   r.data.postBig,
		status: http.StatusCreated,
	}}
}

// postSeen is an answer as a run saw it.
type postSeen struct {
	brief string // status and S3 error code: what is compared
	full  string // with the message or the body
}

// note records an answer of this run for the comparison with the other side.
func (r *run) note(what string, a *postAnswer) {
	if r.answers == nil {
		r.answers = map[string]postSeen{}
	}
	r.answers[what] = postSeen{brief: a.brief(), full: a.String()}
}

// compareAnswers compares the proxy's answers with the server's (versitygw's,
// or another upstream's) to the same forms (each signed with the side's
// keys): each difference fails the test and is returned for the list under
// the matrix. An answer one side never got (its step failed before) is not
// compared.
func compareAnswers(t *testing.T, server, client, scheme string, direct, viaProxy map[string]postSeen) []string {
	var names []string
	for n := range direct {
		names = append(names, n)
	}
	for n := range viaProxy {
		if _, ok := direct[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var diffs []string
	for _, n := range names {
		d, dok := direct[n]
		p, pok := viaProxy[n]
		t.Logf("%s over %s, POST %s: %s %s; proxy %s", client, scheme, n, server, or(dok, d.brief, "none"), or(pok, p.brief, "none"))
		if dok && pok && d.brief == p.brief && d.full != p.full {
			t.Logf("%s over %s, POST %s: same status and code, other words: %s %s; proxy %s", client, scheme, n, server, d.full, p.full)
		}
		if dok && pok && d.brief != p.brief {
			diff := fmt.Sprintf("%s over %s, %s: %s %s; proxy %s", client, scheme, n, server, d.full, p.full)
			t.Errorf("the proxy answers a presigned POST otherwise than %s: %s", server, diff)
			diffs = append(diffs, truncate(diff, 400))
		}
	}
	return diffs
}

func or(ok bool, v, otherwise string) string {
	if ok {
		return v
	}
	return otherwise
}

func stepPresignPost(ctx context.Context, r *run) error {
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	var errs []error
	for _, u := range r.postUploads() {
		if err := r.postUpload(ctx, u); errors.Is(err, errNA) {
			return err
		} else if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.name, err))
		}
	}
	return errors.Join(errs...)
}

// postUpload posts one form and checks the answer and what was stored. The
// checks after the answer's status each report their own failure (a
// checkError, joined), so that the proxy's failures can be compared with the
// server's check by check; what was stored is checked first.
func (r *run) postUpload(ctx context.Context, u postUpload) error {
	f, err := r.ops.PresignPost(ctx, r.bucket, u.policy)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(f.URL, r.tg.url+"/") {
		return fmt.Errorf("the presigner posts to %s, not to %s", f.URL, r.tg.url)
	}
	a, err := r.ops.PostForm(ctx, f, u.file)
	if err != nil {
		return err
	}
	r.note(u.name, a)
	if a.Status != u.status {
		return checkFailed("status", fmt.Errorf("answered %s, want %d", a, u.status))
	}
	var errs []error
	check := func(name string, err error) {
		if err != nil {
			errs = append(errs, checkFailed(name, err))
		}
	}
	if err := r.stored(ctx, u.policy.Key, u.want); err != nil {
		return err
	}
	etag := a.header("ETag")
	if etag == "" {
		check("ETag header", errors.New("no ETag in the answer"))
	}
	check("Location header", r.namesTarget("the Location header", a.header("Location"), u.policy.Key))
	if u.status == http.StatusCreated {
		var pr struct {
			XMLName                     xml.Name `xml:"PostResponse"`
			Location, Bucket, Key, ETag string
		}
		if err := xml.Unmarshal([]byte(a.Body), &pr); err != nil {
			check("PostResponse", fmt.Errorf("201 body is no PostResponse: %v: %s", err, truncate(a.Body, 300)))
		} else {
			check("PostResponse <Location>", r.namesTarget("<Location>", pr.Location, u.policy.Key))
			if pr.Bucket != r.bucket || pr.Key != u.policy.Key || pr.ETag != etag {
				check("PostResponse", fmt.Errorf("PostResponse names bucket %q, key %q, ETag %s; want %q, %q, %s (the ETag header)",
					pr.Bucket, pr.Key, pr.ETag, r.bucket, u.policy.Key, etag))
			}
		}
	}
	h, err := r.oracle.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &r.bucket, Key: aws.String(u.policy.Key)})
	if err != nil {
		check("stored ETag", fmt.Errorf("HEAD: %s", s3Code(err)))
	} else if aws.ToString(h.ETag) != etag {
		check("stored ETag", fmt.Errorf("answered ETag %s, stored %s", etag, aws.ToString(h.ETag)))
	}
	check("GET through the target", r.readBack(ctx, u))
	return errors.Join(errs...)
}

// readBack reads an uploaded object back through the target, as the
// uploader's users would: its bytes, Content-Type and metadata.
func (r *run) readBack(ctx context.Context, u postUpload) error {
	out, err := r.tc.GetObject(ctx, &s3.GetObjectInput{Bucket: &r.bucket, Key: aws.String(u.policy.Key)})
	if err != nil {
		return fmt.Errorf("GET through %s: %s", r.tg.side, s3Code(err))
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		return fmt.Errorf("GET through %s: %v", r.tg.side, err)
	}
	if err := sameBytes("GET", got, u.want); err != nil {
		return err
	}
	if ct := aws.ToString(out.ContentType); ct != u.policy.ContentType {
		return fmt.Errorf("GET: Content-Type %q, want %q", ct, u.policy.ContentType)
	}
	for k, v := range u.policy.Meta {
		if got := out.Metadata[k]; got != v {
			return fmt.Errorf("GET: x-amz-meta-%s %q, want %q (metadata %v)", k, got, v, out.Metadata)
		}
	}
	return nil
}

// namesTarget checks that loc is the URL of key in the run's bucket at the
// run's target (the proxy through the proxy), however the key is escaped: a
// '%' left unescaped (as s3rver leaves it) is read as itself. Behind a TLS
// terminator (tg.tlsFront) the server names itself with http.
func (r *run) namesTarget(what, loc, key string) error {
	if loc == "" {
		return fmt.Errorf("%s is missing", what)
	}
	u, err := url.Parse(lenientEscapes.ReplaceAllString(loc, "%25$1"))
	if err != nil {
		return fmt.Errorf("%s %q: %v", what, loc, err)
	}
	base, _ := url.Parse(r.tg.url)
	scheme := u.Scheme == base.Scheme || r.tg.tlsFront && u.Scheme == "http"
	if !scheme || u.Host != base.Host || u.Path != "/"+r.bucket+"/"+key {
		return fmt.Errorf("%s is %s, want %s://%s%s", what, loc, base.Scheme, base.Host, path.Join("/", r.bucket, key))
	}
	return nil
}

// lenientEscapes matches a '%' that starts no escape.
var lenientEscapes = regexp.MustCompile(`%([^0-9A-Fa-f]|[0-9A-Fa-f][^0-9A-Fa-f]|[0-9A-Fa-f]?$)`)

// postDenial is one refused form of post-denied.
type postDenial struct {
	name   string
	policy postPolicy
	file   postFile
	tamper func(*postForm) // changes the form after signing
	want   int             // status
	code   string          // S3 error code
}

func (r *run) postDenials() []postDenial {
	small := postFile{Path: r.data.postSmallFile(), Name: "small.txt", ContentType: "text/plain"}
	pol := func(name string) postPolicy {
		return postPolicy{Key: postDenied + name + ".txt", ContentType: "text/plain", TypePrefix: "text/",
			Meta: map[string]string{"origin": "conformance denied"}, MinSize: 1, MaxSize: 1 << 20, Expires: 600}
	}
	tooBig := pol("too-big")
	tooBig.MaxSize = postSmallSize / 2
	// A refusal the client reads while it is still sending a big file: the
	// proxy reads the rest of the file (up to its bound) before answering.
	bigFile := postFile{Path: r.data.postBigFile(), Name: "big.bin", ContentType: "text/plain"}
	bigTooBig := pol("big-too-big")
	expired := pol("expired")
	expired.Expires = -120
	return []postDenial{
		{name: "over content-length-range", policy: tooBig, file: small, want: http.StatusBadRequest, code: "EntityTooLarge"},
		{name: "expired policy", policy: expired, file: small, want: http.StatusForbidden, code: "AccessDenied"},
		{name: "a 5 MiB file over content-length-range", policy: bigTooBig, file: bigFile, want: http.StatusBadRequest, code: "EntityTooLarge"},
		{name: "Content-Type changed", policy: pol("tampered"), file: small, want: http.StatusForbidden, code: "AccessDenied",
			tamper: func(f *postForm) { f.set("Content-Type", "application/x-tampered") }},
		{name: "signature changed", policy: pol("bad-signature"), file: small, want: http.StatusForbidden, code: "SignatureDoesNotMatch",
			tamper: func(f *postForm) {
				sig, _ := f.field("x-amz-signature")
				f.set("x-amz-signature", flipHex(sig))
			}},
	}
}

// flipHex changes the last hex digit of s.
func flipHex(s string) string {
	if s == "" {
		return "0"
	}
	last := s[len(s)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return s[:len(s)-1] + string(repl)
}

func stepPostDenied(ctx context.Context, r *run) error {
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	var errs []error
	for _, d := range r.postDenials() {
		if err := r.postDenied(ctx, d); errors.Is(err, errNA) {
			return err
		} else if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.name, err))
		}
	}
	return errors.Join(errs...)
}

func (r *run) postDenied(ctx context.Context, d postDenial) error {
	f, err := r.ops.PresignPost(ctx, r.bucket, d.policy)
	if err != nil {
		return err
	}
	if d.tamper != nil {
		f = f.clone()
		d.tamper(f)
	}
	a, err := r.ops.PostForm(ctx, f, d.file)
	if err != nil {
		return err
	}
	r.note(d.name, a)
	var errs []error
	if code, _ := a.s3Error(); a.Status != d.want || code != d.code {
		errs = append(errs, fmt.Errorf("answered %s, want %d %s", a, d.want, d.code))
	}
	if _, err := r.oracle.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &r.bucket, Key: aws.String(d.policy.Key)}); err == nil {
		errs = append(errs, fmt.Errorf("%q stored all the same", d.policy.Key))
		_, _ = r.oracle.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &r.bucket, Key: aws.String(d.policy.Key)})
	}
	return errors.Join(errs...)
}
