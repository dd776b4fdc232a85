package integration_test

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/osproxy/proxy/integration/internal/s3servers"
)

// TestIntegrationUpstreams runs the integration workload
// (TestIntegrationWorkload's steps: several hundred requests, each sent
// straight to the server and through the proxy, their answers compared)
// against each S3 server of internal/s3servers: SeaweedFS, s3rver (with
// Endpoint.PlainUploads) and radosgw 16.2 (with PlainUploads), with
// virtual-hosted and path-style upstream requests. Through the proxy every
// answer must be the server's own, status, header fields and body, also where
// the server lacks an operation or answers with an error code of its own: the
// proxy relays it. The differences that are of the server's nature are
// decided by the rules of itgUpRecorder.judge, and listed. The answers that
// differ from versitygw's (a run of the same steps against it) are logged as
// a table, by server.
//
// Every request of the workload is signed right. itgRefusalSteps sends what
// is not (a wrong secret, a body other than the one signed): there the proxy
// must give its own refusal whatever the server straight answers (s3rver,
// which checks no signature and no payload hash, takes them straight) and
// leave nothing stored.
func TestIntegrationUpstreams(t *testing.T) {
	t.Parallel()
	rec := &itgUpRecorder{outcomes: map[string]map[string]string{}}
	t.Cleanup(func() { rec.report(t) })
	// The runs go at once, each in a subtest that is not parallel but runs
	// in a goroutine of its own: they mostly wait on the servers (s3rver
	// holds the connection of a broken answer for seconds), which should not
	// take the package's parallel slots (GOMAXPROCS of them) from the tests
	// that compute.
	itgAtOnce(t, func(run func(string, func(*testing.T))) {
		run("versitygw", func(t *testing.T) {
			e := newItgEnv(t, itgConfig{buckets: 2})
			e.judge = rec.judge("versitygw", e)
			itgWorkloadSteps(t, e)
			e = newItgEnv(t, itgConfig{})
			e.judge = rec.refusalJudge("versitygw")
			itgRefusalSteps(t, e)
		})
		for _, k := range s3servers.Kinds {
			run(string(k), func(t *testing.T) {
				sh := &s3servers.Shared{Kind: k}
				t.Cleanup(sh.Stop)
				srv := sh.Get(t)
				itgAtOnce(t, func(run func(string, func(*testing.T))) {
					run("refusals", func(t *testing.T) {
						e := newItgEnv(t, itgConfig{upstream: srv, plainUploads: itgPlainUploads[k]})
						e.judge = rec.refusalJudge(string(k))
						itgRefusalSteps(t, e)
					})
					for _, pathStyle := range []bool{false, true} {
						name, server := "virtual-hosted upstream", string(k)
						if pathStyle {
							name, server = "path-style upstream", server+" path"
						}
						run(name, func(t *testing.T) {
							e := newItgEnv(t, itgConfig{buckets: 2, pathStyle: pathStyle, upstream: srv, plainUploads: itgPlainUploads[k]})
							e.judge = rec.judge(server, e)
							for _, s := range e.sides() {
								s.hc.Transport = itgListingFix{base: s.hc.Transport, fixed: func() { rec.accept(itgRuleXMLChars, server) }}
							}
							itgWorkloadSteps(t, e)
						})
					}
				})
			})
		}
	})
}

// itgRefusals are the answers the proxy gives itself to the requests of
// itgRefusalSteps, whatever the server straight answers: s3rver, which checks
// no signature and no payload hash, takes them straight.
var itgRefusals = map[string]string{
	"GET signed with a wrong secret":                             "403 SignatureDoesNotMatch",
	"PUT whose body does not match its signed SHA-256":           "400 XAmzContentSHA256Mismatch",
	"GET of the key of that PUT (nothing may be stored)":         "404 NoSuchKey",
	"PUT whose body does not match its signed SHA-256 (1 MiB)":   "400 XAmzContentSHA256Mismatch",
	"GET of the key of that PUT (nothing may be stored) (1 MiB)": "404 NoSuchKey",
}

// itgRefusalSteps sends requests that are not what their signature says,
// straight and through the proxy: a GET signed with a wrong secret, a PUT
// whose body is not the one its signed x-amz-content-sha256 names, and a GET
// of that PUT's key.
func itgRefusalSteps(t *testing.T, e *itgEnv) {
	ctx := t.Context()
	e.createBuckets(t)
	obj := []byte("the object")
	e.both(t, "put the object a wrong signature reads", "", func(s *itgSide) string {
		return itgWlDo(ctx, s, http.MethodPut, itgObjPath(s, 0, "obj"), "", nil, obj).show(s)
	})
	e.both(t, "GET signed with a wrong secret", "", func(s *itgSide) string {
		wrong := *s
		wrong.secret = "not-" + s.secret
		return itgWlDo(ctx, &wrong, http.MethodGet, itgObjPath(s, 0, "obj"), "", nil, nil).show(s)
	})
	for _, size := range []int{13, 1 << 20} {
		what := ""
		if size > 13 {
			what = " (1 MiB)"
		}
		key := fmt.Sprintf("tampered-%d", size)
		e.both(t, "PUT whose body does not match its signed SHA-256"+what, "", func(s *itgSide) string {
			body := itgRandom(size, 5)
			signed := itgSHA256(body)
			body[size/2] ^= 1 // one bit changed on the way
			r, err := http.NewRequestWithContext(ctx, http.MethodPut, s.base+itgObjPath(s, 0, key), bytes.NewReader(body))
			if err != nil {
				return err.Error()
			}
			if err := itgSign(ctx, s, r, signed); err != nil {
				return err.Error()
			}
			return itgWlSend(s, r).show(s)
		})
		e.both(t, "GET of the key of that PUT (nothing may be stored)"+what, "", func(s *itgSide) string {
			a := itgWlDo(ctx, s, http.MethodGet, itgObjPath(s, 0, key), "", nil, nil)
			if a.err == nil && a.status == http.StatusOK {
				return fmt.Sprintf("200: %d bytes stored", len(a.body))
			}
			return a.show(s)
		})
	}
	for _, s := range e.sides() {
		for _, k := range []string{"obj", "tampered-13", "tampered-1048576"} {
			_ = itgDelete(ctx, s.c, s.buckets[0], k)
		}
	}
	e.deleteBuckets(t)
}

// itgKeepsCutBodies are the servers that store a body cut short: the proxy
// refuses the client (400) and breaks off the upstream request before the
// last byte, but s3rver commits what it received, replacing the object at the
// key, where S3, versitygw, SeaweedFS and radosgw store nothing. A server
// defect the proxy cannot undo without holding whole bodies back; the README
// says so (docs/clients-and-upstreams.md).
var itgKeepsCutBodies = map[string]bool{string(s3servers.S3rver): true}

// refusalJudge is the judge of itgRefusalSteps against server: the proxy
// must give its own refusal (itgRefusals) whatever the server straight does;
// the other steps must have the same outcome on both sides.
func (r *itgUpRecorder) refusalJudge(server string) func(t *testing.T, step, want, d, p string) {
	return func(t *testing.T, step, want, d, p string) {
		t.Helper()
		r.record(server, step, d, p)
		refusal, ok := itgRefusals[step]
		var stored int
		if _, err := fmt.Sscanf(p, "200: %d bytes stored", &stored); err == nil && ok && itgKeepsCutBodies[server] &&
			strings.HasPrefix(step, "GET of the key of that PUT") {
			t.Logf("%s: %s: the server kept the %d bytes it received before the proxy broke off (straight: %s)", server, step, stored, itgBrief(d))
			return
		}
		switch {
		case ok && itgBrief(p) != refusal:
			t.Errorf("%s: %s: the proxy answers %s, want %s: %q (straight: %q)", server, step, itgBrief(p), refusal, p, d)
		case ok && itgBrief(d) != refusal:
			t.Logf("%s: %s: straight %s, through the proxy %s", server, step, itgBrief(d), refusal)
		case !ok && d != p:
			t.Errorf("%s: %s: direct %q, proxy %q", server, step, d, p)
		}
	}
}

// itgAtOnce calls add with a function that starts a subtest of t in a
// goroutine of its own, and returns when every subtest it started ended.
func itgAtOnce(t *testing.T, add func(run func(name string, f func(*testing.T)))) {
	var wg sync.WaitGroup
	add(func(name string, f func(*testing.T)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, f)
		}()
	})
	wg.Wait()
}

// itgPlainUploads are the servers whose endpoints get PlainUploads: s3rver
// stores aws-chunked framing as data, radosgw 16.2 refuses unsigned trailers.
var itgPlainUploads = map[s3servers.Kind]bool{s3servers.S3rver: true, s3servers.RadosGW: true}

// itgUpRecorder keeps each step's outcomes by server, for the table, and the
// differences between the two sides that the judge accepted, by rule.
type itgUpRecorder struct {
	mu       sync.Mutex
	steps    []string
	outcomes map[string]map[string]string // step → server → "direct\x00proxy"
	accepted map[string][]string          // rule → "server: step"
}

// What differs by nature between a server's answer straight (path-style) and
// through the proxy, and is decided so:
//
//   - itgRuleResource: SeaweedFS names the request's path in an error's
//     <Resource>: /bucket/key straight, /key for the proxy's virtual-hosted
//     request. The answers must be equal but for <Resource> and their
//     Content-Length, which must differ by the length of "/bucket" (HEAD
//     answers show the length of the error body they do not send).
//   - itgRuleBroken: the server's answer is broken (s3rver answers a Range
//     GET of an empty object 206 with Content-Length: 1 and no body): the
//     client straight gets the headers and then an unexpected EOF, the
//     client of the proxy no answer (the proxy cannot relay a body it does
//     not get and drops the connection). Both must be errors.
//   - itgRuleXMLChars: the workload stores a key with U+0001, which XML 1.0
//     cannot carry: versitygw lists it as U+FFFD, radosgw as &#x01;, s3rver
//     as the raw byte. The raw listings are compared as they are (the proxy
//     relays them); the SDK client that lists the buckets to empty them
//     (Go's encoding/xml refuses both) reads them with U+FFFD instead, as
//     from versitygw (itgListingFix).
const (
	itgRuleResource = "the server names the path it got in <Resource> (virtual-hosted through the proxy)"
	itgRuleBroken   = "the server's answer is broken: an error on both sides"
	itgRuleXMLChars = "the server lists a key with a character XML 1.0 forbids: the SDK client of the clean-up reads U+FFFD there"
)

var (
	itgResourceRE      = regexp.MustCompile(`<Resource>[^<]*(?:<bucket\d>[^<]*)*</Resource>`)
	itgContentLengthRE = regexp.MustCompile(`Content-Length: (\d+)`)
)

func (r *itgUpRecorder) accept(rule, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.accepted == nil {
		r.accepted = map[string][]string{}
	}
	if !slices.Contains(r.accepted[rule], what) {
		r.accepted[rule] = append(r.accepted[rule], what)
	}
}

// record keeps the outcomes of a step against server.
func (r *itgUpRecorder) record(server, step, d, p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outcomes[step] == nil {
		r.outcomes[step] = map[string]string{}
		r.steps = append(r.steps, step)
	}
	if _, ok := r.outcomes[step][server]; !ok {
		r.outcomes[step][server] = d + "\x00" + p
	}
}

// itgListingFix replaces, in the listings the SDK client gets (requests with
// amz-sdk-invocation-id; the raw requests of the workload have none), the
// characters XML 1.0 forbids with U+FFFD and calls fixed when it did.
type itgListingFix struct {
	base  http.RoundTripper
	fixed func()
}

// itgXMLForbidden matches the C0 controls XML 1.0 forbids, raw or as
// character references.
var itgXMLForbidden = regexp.MustCompile(`[\x00-\x08\x0b\x0c\x0e-\x1f]|&#[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]);|&#0*(?:[0-8]|1[1245-9]|2[0-9]|3[01]);`)

func (f itgListingFix) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.base.RoundTrip(r)
	if err != nil || r.Method != http.MethodGet || r.Header.Get("Amz-Sdk-Invocation-Id") == "" || !r.URL.Query().Has("list-type") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if fixed := itgXMLForbidden.ReplaceAll(body, []byte("\uFFFD")); !bytes.Equal(fixed, body) {
		f.fixed()
		body = fixed
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// judge returns the judge of e, one server's run: it records each step and
// requires the same outcome on the two sides, but for the differences by
// nature above.
func (r *itgUpRecorder) judge(server string, e *itgEnv) func(t *testing.T, step, want, d, p string) {
	vhost := !e.pathStyle
	pathLen := len("/" + e.direct.buckets[0])
	return func(t *testing.T, step, want, d, p string) {
		t.Helper()
		r.record(server, step, d, p)
		switch {
		case d == p:
		case vhost && itgOnlyResource(d, p, pathLen):
			r.accept(itgRuleResource, server+": "+step)
		case strings.HasPrefix(d, "ERR ") && strings.HasPrefix(p, "ERR "):
			r.accept(itgRuleBroken, server+": "+step)
			t.Logf("%s: %s: %s: direct %q, proxy %q", server, step, itgRuleBroken, d, p)
		default:
			t.Errorf("%s: %s: direct %q, proxy %q", server, step, d, p)
		}
	}
}

// itgOnlyResource reports whether the outcomes d (path-style) and p
// (virtual-hosted) differ only in their error body's <Resource> and, by the
// length of "/bucket", in their Content-Length.
func itgOnlyResource(d, p string, pathLen int) bool {
	strip := func(o string) (string, int) {
		o = itgResourceRE.ReplaceAllString(o, "<Resource>*</Resource>")
		n := -1
		if m := itgContentLengthRE.FindStringSubmatch(o); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		return itgContentLengthRE.ReplaceAllString(o, "Content-Length: *"), n
	}
	ds, dn := strip(d)
	ps, pn := strip(p)
	return ds == ps && dn >= 0 && pn >= 0 && (dn-pn == pathLen || dn-pn == pathLen-1)
}

var (
	itgStatusRE = regexp.MustCompile(`^(\d{3})`)
	itgCodeRE   = regexp.MustCompile(`(?:<Code>|code=)([A-Za-z0-9.]+)`)
	itgRootRE   = regexp.MustCompile(`body "(?:<\?xml[^>]*\?>)?(?:\\n)?<([A-Za-z]+)`)
)

// itgBrief reduces an outcome to its status and S3 code, or the root element
// of an XML body.
func itgBrief(o string) string {
	m := itgStatusRE.FindStringSubmatch(o)
	if m == nil {
		if len(o) > 100 {
			o = o[:100] + "…"
		}
		return o
	}
	s := m[1]
	if strings.HasPrefix(o[3:], ": ") { // an outcome of its own ("200: 13 bytes stored")
		return o
	}
	if c := itgCodeRE.FindStringSubmatch(o); c != nil {
		return s + " " + c[1]
	}
	if c := itgRootRE.FindStringSubmatch(o); c != nil {
		return s + " <" + c[1] + ">"
	}
	return s
}

// report logs, by server, the steps whose answer differs from versitygw's in
// status, S3 code or kind of body (straight, and as relayed through the
// proxy), and the differences between the sides accepted by rule.
func (r *itgUpRecorder) report(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, k := range s3servers.Kinds {
		var rows []string
		for _, step := range r.steps {
			ref, ok := r.outcomes[step]["versitygw"]
			if !ok {
				continue
			}
			refD, _, _ := strings.Cut(ref, "\x00")
			o, ok := r.outcomes[step][string(k)]
			if !ok {
				o, ok = r.outcomes[step][string(k)+" path"]
			}
			if !ok {
				continue
			}
			d, p, _ := strings.Cut(o, "\x00")
			if itgBrief(d) == itgBrief(refD) && itgBrief(p) == itgBrief(refD) {
				continue
			}
			rows = append(rows, fmt.Sprintf("  %s\t%s\t%s\t%s", step, itgBrief(refD), itgBrief(d), itgBrief(p)))
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s: %d answers differ from versitygw's\n", k, len(rows))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  step\tversitygw\tstraight\tthrough the proxy")
		for _, row := range rows {
			fmt.Fprintln(tw, row)
		}
		_ = tw.Flush()
	}
	for _, rule := range slices.Sorted(maps.Keys(r.accepted)) {
		fmt.Fprintf(&b, "\naccepted, %s:\n  %s\n", rule, strings.Join(r.accepted[rule], "\n  "))
	}
	t.Logf("the workload against each server, by step (status and S3 code, or the XML answer's root element):%s", b.String())
}
