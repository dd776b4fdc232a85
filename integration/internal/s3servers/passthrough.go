package s3servers

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// PassThrough is a TLS terminator for the S3 server at addr (put it behind
// httptest.NewTLSServer): it forwards every request as received (Host,
// headers, body framing: Content-Length or chunked), so that the server
// checks the client's own signature and reads the client's own body; only the
// TLS is taken off. It reads the whole body first (test bodies are a few MiB
// at most) and writes the request in one go on a connection of its own, then
// relays the answer: a server may answer before it has read the body and
// close the connection (versitygw does for a PUT without a length), which a
// streaming proxy would see as a broken pipe.
func PassThrough(addr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
		if r.ProtoMajor == 2 { // RequestURI is the path; Host is :authority
			rawPath, rawQuery = r.URL.EscapedPath(), r.URL.RawQuery
		}
		out := &http.Request{
			Method: r.Method, URL: &url.URL{Opaque: rawPath, RawQuery: rawQuery},
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: r.Header.Clone(), Host: r.Host, ContentLength: r.ContentLength,
			TransferEncoding: r.TransferEncoding, Close: true,
		}
		out.Header.Del("Expect") // the body goes at once
		if len(body) > 0 || r.ContentLength < 0 {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		if r.ContentLength < 0 && r.ProtoMajor == 2 {
			out.ContentLength = int64(len(body)) // no chunked encoding where HTTP/2 had none
		}
		var req bytes.Buffer
		if err := out.Write(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
		_, werr := conn.Write(req.Bytes()) // an early answer may cut this short
		resp, err := http.ReadResponse(bufio.NewReader(conn), out)
		if err != nil {
			http.Error(w, fmt.Sprintf("write: %v; read: %v", werr, err), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			if k != "Connection" {
				w.Header()[k] = vs
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}
