package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/integration/internal/s3servers"
)

// The matrix's upstreams. Besides versitygw (the baseline of every step), the
// matrix runs against the S3 servers of internal/s3servers, each straight and
// through a proxy in front of it, over http and https:
//
//   - SeaweedFS, which verifies SigV4 and decodes aws-chunked bodies;
//   - s3rver, which checks no signature and stores aws-chunked bodies with
//     their framing inside: its proxy has Endpoint.PlainUploads, so that
//     every upload of every client reads back exact through the proxy,
//     including those that are corrupt straight;
//   - radosgw 16.2, which refuses unsigned-trailer aws-chunked bodies
//     (STREAMING-UNSIGNED-PAYLOAD-TRAILER: 400 XAmzContentSHA256Mismatch,
//     or 411 MissingContentLength without a length): its proxy has
//     PlainUploads too.
//
// Against these the matrix runs some of its steps (upstreamSteps), not all
// 18: the whole matrix takes 4 minutes per upstream on two cores. Straight
// over https the clients talk to a TLS-terminating pass-through in front of
// the server (s3servers.PassThrough), which forwards each request as received, so
// that the server sees what the client sent.

// upstreamSteps are the steps run against the servers other than versitygw
// (OSP_MATRIX_STEPS replaces them). Against s3rver every upload step, since
// uploads are what corrupt there: put-small, put-10MiB, multipart, sync,
// presign-put and presign-post. Against SeaweedFS and radosgw the uploads of
// every body format (put-10MiB, multipart: the aws-chunked variants, which
// radosgw refuses in part) and the presigned requests (presign-get,
// presign-put, presign-post: the proxy re-signs forms for each server's POST
// Object). What the proxy only relays (downloads, listings, deletes, copies,
// keys, ranges, conditions, errors) each server gets from
// TestIntegrationUpstreams in the root package, request by request; the
// aws-cli runs of the other steps would not fit the time of scripts/test.
var upstreamSteps = map[s3servers.Kind][]string{
	s3servers.SeaweedFS: {"put-10MiB", "multipart", "presign-get", "presign-put", "presign-post"},
	s3servers.S3rver:    {"put-small", "put-10MiB", "multipart", "sync", "presign-put", "presign-post"},
	s3servers.RadosGW:   {"put-10MiB", "multipart", "presign-get", "presign-put", "presign-post"},
}

// uploadSteps are the steps that upload a client's bytes; against s3rver
// each must read back exact through the proxy whatever it does straight.
var uploadSteps = []string{"put-small", "put-10MiB", "multipart", "sync", "presign-put", "presign-post"}

// upstream is one server the matrix runs against.
type upstream struct {
	name  string         // "versitygw", or the server's kind
	desc  string         // with its version
	kind  s3servers.Kind // "" for versitygw
	steps []step
	// direct and viaProxy are the base URLs by scheme, straight and through
	// the proxy; key and secret are the server's, for the clients straight.
	direct, viaProxy map[string]string
	key, secret      string
	// store returns the oracle of a run: straight to where its buckets live.
	store func(t testing.TB, side, scheme string) *s3.Client
	// formats records the upload bodies the proxy receives.
	formats *formatLog
	// exactUploads: what every upload step stores through the proxy must
	// be exact, even where it is not straight (s3rver).
	exactUploads bool
}

// upstreamStarts are the servers of the matrix being started.
type upstreamStarts struct {
	names   []string // the upstreams of the matrix, versitygw first
	wg      sync.WaitGroup
	servers map[s3servers.Kind]*serverStart
}

type serverStart struct {
	srv     *s3servers.Server
	missing bool
	err     error
	took    time.Duration
}

// startUpstreams starts the servers of the matrix's upstreams in the
// background: those named in OSP_MATRIX_UPSTREAMS (comma-separated:
// versitygw, seaweedfs, s3rver, radosgw), or all four. They are stopped when
// t ends.
func startUpstreams(t *testing.T) *upstreamStarts {
	ss := &upstreamStarts{names: []string{"versitygw"}, servers: map[s3servers.Kind]*serverStart{}}
	for _, k := range s3servers.Kinds {
		ss.names = append(ss.names, string(k))
	}
	if only := os.Getenv("OSP_MATRIX_UPSTREAMS"); only != "" {
		sel := strings.Split(only, ",")
		for _, n := range sel {
			if !slices.Contains(ss.names, n) {
				t.Fatalf("OSP_MATRIX_UPSTREAMS: no upstream %q (%s)", n, strings.Join(ss.names, ", "))
			}
		}
		ss.names = slices.DeleteFunc(ss.names, func(n string) bool { return !slices.Contains(sel, n) })
	}
	for _, n := range ss.names {
		if n == "versitygw" {
			continue
		}
		st := &serverStart{}
		ss.servers[s3servers.Kind(n)] = st
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			t0 := time.Now()
			st.srv, st.missing, st.err = s3servers.Start(s3servers.Kind(n))
			st.took = time.Since(t0)
		}()
	}
	t.Cleanup(func() {
		ss.wg.Wait()
		for _, st := range ss.servers {
			if st.srv != nil {
				st.srv.Stop()
			}
		}
	})
	return ss
}

// upstreams waits for the servers and returns the upstreams of the matrix,
// each with its proxy, whose static buckets (listed by ListBuckets) are
// static. A server that is not set up is skipped, or fails the test with
// OSP_REQUIRE_INTEGRATION=1.
func (ss *upstreamStarts) upstreams(t *testing.T, static []string) []*upstream {
	ss.wg.Wait()
	var ups []*upstream
	for _, n := range ss.names {
		if n == "versitygw" {
			ups = append(ups, versitygwUpstream(t, static))
			continue
		}
		k := s3servers.Kind(n)
		switch st := ss.servers[k]; {
		case st.err == nil:
			t.Logf("%s (%s) started on %s in %v", k, st.srv.Version, st.srv.Addr, st.took.Round(10*time.Millisecond))
			ups = append(ups, serverUpstream(t, st.srv, static))
		case st.missing && !requireIntegration():
			t.Logf("skipping the matrix against %s: %v", k, st.err)
		case st.missing:
			t.Errorf("OSP_REQUIRE_INTEGRATION=1 but %s is not available: %v", k, st.err)
		default:
			t.Errorf("%s did not start: %v", k, st.err)
		}
	}
	return ups
}

// versitygwUpstream is the baseline: versitygw over http (the proxy's
// upstream and the http baseline) and over https (the https baseline). The
// proxy lists the static buckets.
func versitygwUpstream(t *testing.T, static []string) *upstream {
	vh := versity(t, false)
	vs := versity(t, true)
	up := &upstream{name: "versitygw", desc: "versitygw", steps: matrixSteps(t),
		direct: map[string]string{"http": vh.url(), "https": vs.url()}, key: vgwAccessKey, secret: vgwSecretKey,
		formats: &formatLog{}}
	up.store = func(t testing.TB, side, scheme string) *s3.Client {
		if side == "direct" && scheme == "https" {
			return oracle(t, vs)
		}
		return oracle(t, vh)
	}
	up.serveProxy(t, newVGWProxy(t, vh, static, debugLog()...))
	return up
}

// serverUpstream is srv with a proxy in front of it, which lists the static
// buckets.
func serverUpstream(t *testing.T, srv *s3servers.Server, static []string) *upstream {
	names := upstreamSteps[srv.Kind]
	if os.Getenv("OSP_MATRIX_STEPS") != "" {
		names = nil
	}
	up := &upstream{name: string(srv.Kind), desc: srv.Version, kind: srv.Kind, steps: stepsNamed(t, names),
		direct: map[string]string{"http": srv.URL(), "https": serve(t, s3servers.PassThrough(srv.Addr), true).URL},
		key:    srv.AccessKey, secret: srv.SecretKey, formats: &formatLog{},
		exactUploads: srv.Kind == s3servers.S3rver}
	up.store = func(t testing.TB, _, _ string) *s3.Client {
		c, _ := goS3(t, srv.URL(), srv.AccessKey, srv.SecretKey, 0)
		return c
	}
	up.serveProxy(t, newServerProxy(t, srv, static, debugLog()...))
	return up
}

// stepsNamed returns the steps named, in the matrix's order, or
// matrixSteps(t) for none.
func stepsNamed(t *testing.T, names []string) []step {
	if len(names) == 0 {
		return matrixSteps(t)
	}
	return slices.DeleteFunc(slices.Clone(steps), func(s step) bool { return !slices.Contains(names, s.name) })
}

// serveProxy serves p over http and https, recording the upload bodies it
// receives.
func (up *upstream) serveProxy(t *testing.T, p *proxy.Proxy) {
	h := up.formats.record(p)
	up.viaProxy = map[string]string{"http": serve(t, h, false).URL, "https": serve(t, h, true).URL}
}

// plainUploads are the servers whose proxy sends upload bodies decoded
// (Endpoint.PlainUploads): s3rver would store aws-chunked framing as data,
// radosgw 16.2 refuses unsigned-trailer bodies.
var plainUploads = map[s3servers.Kind]bool{s3servers.S3rver: true, s3servers.RadosGW: true}

// newServerProxy is the matrix's proxy in front of srv, as newVGWProxy is in
// front of versitygw: verified mode with the client key pair, every bucket
// name routed to srv with its keys, virtual-hosted upstream requests,
// PlainUploads where the server needs it, the static buckets listed. It also
// verifies SigV2 (s3cmd's signurl), which the three servers take straight and
// versitygw does not.
func newServerProxy(t testing.TB, srv *s3servers.Server, static []string, opts ...proxy.Option) *proxy.Proxy {
	t.Helper()
	ep := proxy.Endpoint{Host: srv.Domain, Port: srv.Port, Scheme: "http", PlainUploads: plainUploads[srv.Kind]}
	creds := proxy.Credentials{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}
	tr := srv.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	var buckets []proxy.Bucket
	for _, b := range static {
		buckets = append(buckets, proxy.Bucket{Name: b, Endpoint: ep, Credentials: creds})
	}
	p, err := proxy.New(append([]proxy.Option{
		proxy.WithBuckets(buckets...),
		proxy.WithClientKeys(map[string]string{clientKey: clientSecret}),
		proxy.WithEndpoint(func(context.Context, string) (proxy.Endpoint, error) { return ep, nil }),
		proxy.WithCredentials(func(context.Context, string) (proxy.Credentials, error) { return creds, nil }),
		proxy.WithTransport(tr),
		proxy.WithSigV2(true),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// formatLog records, by bucket, the body formats of the uploads a proxy
// receives: the x-amz-content-sha256 of each PUT and POST with a body.
type formatLog struct {
	mu     sync.Mutex
	byName map[string]map[string]bool // bucket → formats
}

// bodyFormat names the format of an upload's body.
func bodyFormat(r *http.Request) string {
	if r.URL.Query().Get("X-Amz-Signature") != "" || r.URL.Query().Get("Signature") != "" {
		return "presigned"
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		return "POST form"
	}
	h := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case h == "":
		return "none (SigV2)"
	case hexSHA256.MatchString(h):
		return "hex SHA-256"
	}
	return h
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (f *formatLog) record(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		q := r.URL.Query()
		put := r.Method == http.MethodPut && key != "" && r.Header.Get("X-Amz-Copy-Source") == "" &&
			!q.Has("tagging") && !q.Has("acl") && !q.Has("retention") && !q.Has("legal-hold")
		form := r.Method == http.MethodPost && key == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data")
		if put || form {
			format := bodyFormat(r)
			if strings.HasPrefix(format, "STREAMING-") && r.Header.Get("X-Amz-Decoded-Content-Length") == "" {
				format += " (no decoded length)"
			}
			f.mu.Lock()
			if f.byName == nil {
				f.byName = map[string]map[string]bool{}
			}
			if f.byName[bucket] == nil {
				f.byName[bucket] = map[string]bool{}
			}
			f.byName[bucket][format] = true
			f.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// of returns the formats seen for bucket, sorted.
func (f *formatLog) of(bucket string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.byName[bucket] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// aws-chunked payload modes.
const (
	unsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	signedChunks    = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
)

// chunkedClients are the clients and schemes known to send aws-chunked
// uploads (the SDKs pinned by go.mod and testdata/js): the matrix fails when
// they did not, since then their coverage would be lost silently.
var chunkedClients = map[string]string{
	"awsjs http":   unsignedTrailer,
	"awsjs https":  unsignedTrailer,
	"gosdk https":  unsignedTrailer,
	"miniogo http": signedChunks,
}

// errCorrupt marks a stored object that holds the bytes uploaded with their
// aws-chunked framing inside.
var errCorrupt = errors.New("corrupt")

// framedData reports whether got is want sent as one or more aws-chunked
// bodies (a multipart object holds one per part) whose framing was stored as
// data: chunk headers, chunk signatures and trailers.
func framedData(got, want []byte) bool {
	if len(got) <= len(want) {
		return false
	}
	var data []byte
	rest := got
	line := func() ([]byte, bool) {
		l, after, ok := bytes.Cut(rest, []byte("\r\n"))
		rest = after
		return l, ok
	}
	for len(rest) > 0 {
		for {
			l, ok := line()
			if !ok {
				return false
			}
			size, _, _ := bytes.Cut(l, []byte(";"))
			n, err := strconv.ParseUint(string(size), 16, 31)
			if err != nil {
				return false
			}
			if n == 0 {
				break
			}
			if uint64(len(rest)) < n+2 || string(rest[n:n+2]) != "\r\n" {
				return false
			}
			data = append(data, rest[:n]...)
			rest = rest[n+2:]
		}
		for { // trailers, up to an empty line
			l, ok := line()
			if !ok {
				return false
			}
			if len(l) == 0 {
				break
			}
		}
	}
	return bytes.Equal(data, want)
}

// cellBetter is a step that fails straight against the server and passes
// through the proxy (the proxy decodes what the server would corrupt or
// refuse): not a failure.
const cellBetter cell = cellNA + 1

// upstreamVerdict compares the proxy's outcome of a step with the server's
// straight, for a server other than versitygw.
func upstreamVerdict(up *upstream, s step, direct, viaProxy outcome) (cell, string) {
	switch {
	case errors.Is(direct.err, errNA):
		return cellNA, "client: " + direct.err.Error()
	case direct.err == nil && viaProxy.err == nil:
		return cellOK, ""
	case direct.err == nil:
		return cellFail, viaProxy.err.Error()
	case viaProxy.err == nil && errors.Is(direct.err, errCorrupt):
		return cellBetter, "corrupt straight, exact through the proxy: " + direct.err.Error()
	case viaProxy.err == nil:
		return cellBetter, "fails straight, passes through the proxy: " + direct.err.Error()
	}
	// Both fail: the proxy must pass each check that passes straight (a
	// step that checks several things reports each failed check), and
	// against s3rver every upload must be stored exact.
	dc, pc := failedChecks(direct.err), failedChecks(viaProxy.err)
	if up.exactUploads && slices.Contains(uploadSteps, s.name) && pc[checkStored] {
		return cellFail, fmt.Sprintf("an upload must read back exact through the proxy: %v (straight: %v)", viaProxy.err, direct.err)
	}
	var worse []string
	for c := range pc {
		if !dc[c] {
			worse = append(worse, or(c != "", c, "the client's call"))
		}
	}
	if len(worse) > 0 {
		sort.Strings(worse)
		return cellFail, fmt.Sprintf("fails %s, which pass straight: %v (straight: %v)", strings.Join(worse, ", "), viaProxy.err, direct.err)
	}
	return cellNA, fmt.Sprintf("%s itself cannot: %v (the proxy relays: %v)", up.name, direct.err, viaProxy.err)
}

// reportFormats writes which body formats each client's uploads had as the
// proxies received them (over every upstream), and fails the test where a
// client known to send aws-chunked (chunkedClients) did not: its coverage
// would be lost.
func reportFormats(t *testing.T, buf *bytes.Buffer, ups []*upstream, clients []*clientSpec, schemes []string) {
	// The clients send aws-chunked in PutObject (put-small, put-10MiB, sync).
	puts := slices.ContainsFunc(ups, func(up *upstream) bool {
		return slices.ContainsFunc(up.steps, func(s step) bool { return s.name == "put-small" || s.name == "put-10MiB" })
	})
	fmt.Fprintf(buf, "\nupload bodies as the proxy received them (PutObject, UploadPart, presigned PUT, POST form):\n")
	tw := tabwriter.NewWriter(buf, 0, 0, 1, ' ', 0)
	for _, c := range clients {
		for _, sc := range schemes {
			seen := map[string]bool{}
			for _, up := range ups {
				for _, f := range up.formats.of(matrixBucket(c, sc, "proxy")) {
					seen[f] = true
				}
			}
			formats := slices.Sorted(maps.Keys(seen))
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.name, sc, strings.Join(formats, ", "))
			if want, ok := chunkedClients[c.id+" "+sc]; ok && puts && !seen[want] {
				t.Errorf("%s over %s sent no %s upload (%s): the matrix no longer covers it", c.name, sc, want, strings.Join(formats, ", "))
			}
		}
	}
	_ = tw.Flush()
}

// TestFramedData checks the oracle's reading of corrupt objects: data sent
// aws-chunked (signed chunks, or plain chunks and a trailer; one body or one
// per part) and stored with its framing is recognised, other bytes are not.
func TestFramedData(t *testing.T) {
	data := randomBytes(150_000, 3)
	frame := func(b []byte, signed bool) []byte {
		var out bytes.Buffer
		for off := 0; ; off += 64 << 10 {
			chunk := b[min(off, len(b)):min(off+64<<10, len(b))]
			if signed {
				fmt.Fprintf(&out, "%x;chunk-signature=%064x\r\n", len(chunk), off)
			} else {
				fmt.Fprintf(&out, "%x\r\n", len(chunk))
			}
			if len(chunk) == 0 {
				break
			}
			out.Write(chunk)
			out.WriteString("\r\n")
		}
		if !signed {
			out.WriteString("x-amz-checksum-crc32:AAAAAA==\r\n")
		}
		out.WriteString("\r\n")
		return out.Bytes()
	}
	parts := append(frame(data[:100_000], false), frame(data[100_000:], false)...)
	for _, c := range []struct {
		name string
		got  []byte
		want bool
	}{
		{"unsigned trailer", frame(data, false), true},
		{"signed chunks", frame(data, true), true},
		{"one framed body per part", parts, true},
		{"the data itself", data, false},
		{"other data, framed", frame(randomBytes(150_000, 4), true), false},
		{"cut short", frame(data, true)[:100_000], false},
	} {
		if got := framedData(c.got, data); got != c.want {
			t.Errorf("%s: framedData = %v, want %v", c.name, got, c.want)
		}
	}
}
