package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osproxy/proxy/internal/s3xml"
)

// forward sends the built upstream request through the proxy's transport and
// streams the answer to the client, as a reverse proxy does: the answer's
// hop-by-hop headers are dropped, its status, headers, body and trailers go
// on. (The proxy does this itself rather than through httputil.ReverseProxy,
// which would first copy the client's request and its headers, to replace
// them with the upstream request built here.) An answer cut after its headers
// went to the client is recorded in x.cut: the client connection is then
// aborted (ServeHTTP).
func (p *Proxy) forward(x *exchange) {
	p.log.LogAttrs(x.in.Context(), slog.LevelDebug, "forward",
		slog.String("request_id", x.id), slog.String("method", x.in.Method),
		slog.String("bucket", x.req.bucket), slog.String("upstream", x.out.url.Host))
	o := &x.out
	out := (&http.Request{Method: x.in.Method, URL: o.url, Header: o.header, Body: o.body, ContentLength: o.length,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(x.in.Context())
	resp, err := x.roundTrip(out)
	if err != nil {
		x.upstreamError(err)
		return
	}
	if resp.Body == nil { // a RoundTripper of the caller's (WithTransport) may leave it so
		resp.Body = http.NoBody
	}
	if resp.StatusCode == http.StatusSwitchingProtocols { // never asked for: no Upgrade goes upstream
		_ = resp.Body.Close()
		x.upstreamError(errors.New("the upstream switched protocols unasked"))
		return
	}
	removeHopByHopHeaders(resp.Header)
	h := x.w.Header()
	// An answer the upstream sent without a Content-Type goes without one:
	// the server would sniff one from the body. A nil value keeps the key, so
	// it does not; the upstream's Content-Type, if any, is added to it.
	if _, set := h["Content-Type"]; !set {
		h["Content-Type"] = nil
	}
	for name, values := range resp.Header {
		for _, v := range values {
			h.Add(name, v)
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for name := range resp.Trailer {
			names = append(names, name)
		}
		h.Add("Trailer", strings.Join(names, ", "))
	}
	x.w.WriteHeader(resp.StatusCode)
	if err := x.copyAnswer(resp); err != nil {
		_ = resp.Body.Close()
		x.cut = err
		return
	}
	_ = resp.Body.Close() // sets resp.Trailer
	if len(resp.Trailer) == 0 {
		return
	}
	if err := http.NewResponseController(x.w).Flush(); err != nil {
		x.cut = err
		return
	}
	prefix := "" // announced trailers go as they are
	if len(resp.Trailer) != announced {
		prefix = http.TrailerPrefix // others reach the client only in this form
	}
	for name, values := range resp.Trailer {
		for _, v := range values {
			h.Add(prefix+name, v)
		}
	}
}

// abortIfCut aborts the client's connection when its answer was cut short
// after the headers went out: the client must not take the part it got for
// the whole. Outside an http.Server (a test's ResponseRecorder, say) there is
// no connection to abort.
func (x *exchange) abortIfCut() {
	if x.cut != nil && x.in.Context().Value(http.ServerContextKey) != nil {
		panic(http.ErrAbortHandler)
	}
}

// hopByHopHeaders are the header fields of one connection (RFC 9110, 7.6.1),
// which a proxy does not pass on, as httputil.ReverseProxy has them.
var hopByHopHeaders = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopByHopHeaders removes from an upstream answer's headers the
// hop-by-hop ones and those its Connection header names.
func removeHopByHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHopHeaders {
		delete(h, name) // the transport's keys are canonical, as these are
	}
}

// copyAnswer copies the upstream's answer body to the client. What the
// upstream sent reaches the client even when the upstream then stalls: the
// client's response is flushed before each read after the first, so that an
// answer read in one go is still written in one go; a body of unknown length
// is flushed after every write, as it arrived (chunked, as the upstream sent
// it). It returns the error that cut the copy short: the upstream's (logged)
// or the client's.
func (x *exchange) copyAnswer(resp *http.Response) error {
	body := resp.Body
	if body == http.NoBody {
		return nil
	}
	large := resp.ContentLength >= largeAnswer
	buf := getCopyBuffer(large)
	defer putCopyBuffer(buf, large)
	var flusher http.Flusher
	flush := func() {
		if flusher == nil {
			flusher = flusherOf(x.w)
		}
		flusher.Flush()
	}
	unknown := resp.ContentLength < 0
	for read := false; ; read = true {
		if read && !unknown {
			flush()
		}
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := x.w.Write(buf[:n]); werr != nil {
				return werr
			}
			if unknown {
				flush()
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			if !errors.Is(rerr, context.Canceled) {
				x.p.log.LogAttrs(x.in.Context(), slog.LevelWarn, "upstream answer cut",
					slog.String("request_id", x.id), slog.Any("error", rerr))
			}
			return rerr
		}
	}
}

// roundTrip sends the upstream request through the proxy's transport, as a
// StepUpstream for a tracer, and records when the upstream answered and with
// which request id. Every answer
// carries an x-amz-request-id: the upstream's when it sent one (the client may
// need it with the upstream's support), the proxy's otherwise.
func (x *exchange) roundTrip(r *http.Request) (*http.Response, error) {
	end := noStepEnd
	if step := x.p.cfg.observer.Step; step != nil {
		var ctx context.Context
		ctx, end = step(r.Context(), Step{Kind: StepUpstream, Request: r,
			Operation: x.req.op.Name, Bucket: x.req.bucket, Key: x.req.key})
		r = r.WithContext(ctx)
	}
	x.sent = time.Now()
	resp, err := x.p.transport.RoundTrip(r)
	x.upstream = time.Since(x.sent)
	if err != nil {
		end(StepEnd{Err: stepError(err)})
		return nil, err
	}
	end(StepEnd{StatusCode: resp.StatusCode})
	scrubCredentialHeaders(resp.Header, r)
	// The transport's header keys are canonical, as this one is.
	if id := resp.Header["X-Amz-Request-Id"]; len(id) > 0 && id[0] != "" {
		x.upstreamID = id[0]
	} else {
		resp.Header["X-Amz-Request-Id"] = []string{x.id}
	}
	if x.p.cfg.cors != nil { // the proxy's policy speaks (corsHeaders), not the upstream's
		for name := range resp.Header {
			if strings.HasPrefix(name, "Access-Control-") {
				delete(resp.Header, name)
			}
		}
		if len(x.w.Header().Values("Vary")) > 0 { // corsHeaders said Vary: Origin; once is enough
			var keep []string
			for _, v := range resp.Header.Values("Vary") {
				for f := range strings.SplitSeq(v, ",") {
					if f = strings.TrimSpace(f); f != "" && !strings.EqualFold(f, "Origin") {
						keep = append(keep, f)
					}
				}
			}
			resp.Header.Del("Vary")
			if len(keep) > 0 {
				resp.Header.Set("Vary", strings.Join(keep, ", "))
			}
		}
	}
	if resp.StatusCode >= 400 && x.in.Method != http.MethodHead {
		code, err := scrubErrorBody(resp)
		if err != nil {
			return nil, err
		}
		x.upstreamCode = code
		return resp, nil
	}
	x.rewriteLocations(resp)
	return resp, nil
}

// flusherOf returns w's Flusher, found through Unwrap if need be.
func flusherOf(w http.ResponseWriter) http.Flusher {
	if f, ok := w.(http.Flusher); ok {
		return f
	}
	return controllerFlusher{http.NewResponseController(w)}
}

type controllerFlusher struct{ rc *http.ResponseController }

func (c controllerFlusher) Flush() { _ = c.rc.Flush() }

// scrubCredentialHeaders removes from an upstream answer's headers every one
// that carries a credential of the upstream request out, echoed by the
// upstream or a hop between: its signature, its bearer token, its security
// token. They are long random strings: nothing else contains them.
func scrubCredentialHeaders(h http.Header, out *http.Request) {
	var secrets [2]string
	auth := out.Header.Get("Authorization")
	if _, sig, ok := strings.Cut(auth, "Signature="); ok {
		secrets[0] = sig
	} else if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
		secrets[0] = tok
	}
	secrets[1] = out.Header.Get("X-Amz-Security-Token")
	// Only secrets of 16 bytes or more are looked for; a value shorter than
	// the shortest of them holds none.
	shortest := 0
	for i, s := range secrets {
		switch {
		case len(s) < 16:
			secrets[i] = ""
		case shortest == 0 || len(s) < shortest:
			shortest = len(s)
		}
	}
	if shortest == 0 {
		return
	}
	for name, values := range h {
		for _, v := range values {
			if len(v) >= shortest && slices.ContainsFunc(secrets[:], func(s string) bool { return s != "" && strings.Contains(v, s) }) {
				delete(h, name)
				break
			}
		}
	}
}

// maxUpstreamErrorBody bounds the error body of an upstream answer the proxy
// reads to scrub it. An S3 error body is a few hundred bytes; past the bound
// the client gets 502 BadGateway instead.
const maxUpstreamErrorBody = 64 << 10

// upstreamDiagnostics are the elements of an S3 error body that describe the
// signature of the request the upstream received: the proxy's upstream
// signature, with the upstream's access key id, not the client's. They are
// removed from the error bodies the client gets.
var upstreamDiagnostics = map[string]bool{
	"AWSAccessKeyId": true, "StringToSign": true, "StringToSignBytes": true,
	"SignatureProvided": true, "CanonicalRequest": true, "CanonicalRequestBytes": true,
}

// scrubErrorBody replaces the body of an upstream error answer with the same
// XML error without upstreamDiagnostics (Code, Message, Resource, RequestId and
// the rest stay), and returns its S3 error code. A body that is not an XML
// <Error>, or is content-encoded, passes as it is.
func scrubErrorBody(resp *http.Response) (code string, err error) {
	if resp.Body == nil || resp.Body == http.NoBody {
		return "", nil
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return "", nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamErrorBody+1))
	_ = resp.Body.Close()
	if err != nil {
		return "", errBadGateway.with(fmt.Errorf("reading the upstream's error answer: %w", err))
	}
	if len(body) > maxUpstreamErrorBody {
		return "", errBadGateway.with(fmt.Errorf("the upstream's error answer (status %d) exceeds %d bytes", resp.StatusCode, maxUpstreamErrorBody))
	}
	if clean, c, ok := s3xml.ScrubError(body, upstreamDiagnostics); ok {
		body, code = clean, c
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.TransferEncoding = nil
	return code, nil
}

// upstreamError answers a failed upstream exchange: the S3 error a body check
// raised, 504 on timeouts, 502 otherwise. A client that went away gets nothing.
func (x *exchange) upstreamError(err error) {
	e, isS3 := s3ErrorOf(err)
	switch {
	case isS3:
	case errors.Is(x.in.Context().Err(), context.Canceled):
		x.p.log.LogAttrs(x.in.Context(), slog.LevelDebug, "client went away",
			slog.String("request_id", x.id), slog.String("path", logText(x.in.URL.Path)))
		return
	case isTimeout(err):
		e = errGatewayTimeout.with(err)
	default:
		e = errBadGateway.with(err)
	}
	x.fail(e)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Answers are copied to the client in recycled buffers of 32 KiB, or blocks
// of upstreamCopyBlock for a body of largeAnswer bytes or more. A large block
// takes what the upstream's socket holds in one read and writes it to the
// client in one write, where 32 KiB cost a read and a write syscall every
// 32 KiB of a large GET.
const answerBuffer = 32 << 10

// largeAnswer is the smallest answer body copied in blocks of
// upstreamCopyBlock.
const largeAnswer = 1 << 20

var answerBuffers = sync.Pool{New: func() any { return new([answerBuffer]byte) }}

func getCopyBuffer(large bool) []byte {
	if large {
		return copyBlocks.Get().(*[upstreamCopyBlock]byte)[:]
	}
	return answerBuffers.Get().(*[answerBuffer]byte)[:]
}

func putCopyBuffer(b []byte, large bool) {
	if large {
		copyBlocks.Put((*[upstreamCopyBlock]byte)(b))
		return
	}
	answerBuffers.Put((*[answerBuffer]byte)(b))
}
