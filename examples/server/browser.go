package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The browser page: a static page (page/, embedded) on a listener of its own,
// so another origin than the proxy's, that lists a bucket and uploads files to
// it through the proxy with a presigned PUT and with a presigned POST (an HTML
// form upload). The page talks to the proxy directly, cross-origin; the proxy's
// CORS policy (cors in the config, the demo's own) must allow the page's
// origin. What the page sends is presigned here, by small JSON endpoints on
// the page's origin, with the secret of one client key: the page sees URLs and
// form fields, never a secret. Whoever reaches the page may use that key
// through it, for presignExpiry at a time.
//
//	GET  /                    the page (index.html, app.js, style.css)
//	GET  /api/config          the bucket, the proxy's URL, the key's id
//	POST /api/presign/list    {} → {method, url}: ListObjectsV2 of the bucket
//	POST /api/presign/put     {key, content_type} → {method, url, headers}
//	POST /api/presign/post    {key, content_type} → {method, url, fields}

//go:embed page
var pageFS embed.FS

// presignExpiry is how long the page's URLs and forms stay valid.
const presignExpiry = 15 * time.Minute

// maxKeyBytes is S3's bound on a key.
const maxKeyBytes = 1024

// browserPage serves the page and presigns its requests.
type browserPage struct {
	bucket string
	creds  aws.Credentials
	region string
	// proxy is the proxy's URL as browsers reach it; nil when the proxy
	// listens on every interface and no proxy_url is set: then it is the host
	// the page was reached by, with proxyScheme and proxyPort.
	proxy       *url.URL
	proxyScheme string
	proxyPort   string
	files       http.Handler
	log         *slog.Logger
}

// newBrowserPage returns the page of bucket, presigning with the key pair
// keyID/secret for region, talking to the proxy at proxyURL, or ("") at the
// proxy's listener frontAddr.
func newBrowserPage(bucket, keyID, secret, region, proxyURL string, frontAddr net.Addr, tls bool, log *slog.Logger) (*browserPage, error) {
	sub, err := fs.Sub(pageFS, "page")
	if err != nil {
		return nil, err
	}
	p := &browserPage{
		bucket: bucket,
		creds:  aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret, Source: "browser.client_key"},
		region: region,
		files:  http.FileServerFS(sub),
		log:    log,
	}
	if proxyURL != "" {
		if p.proxy, err = parseProxyURL(proxyURL); err != nil {
			return nil, fmt.Errorf("browser.proxy_url: %w", err)
		}
		return p, nil
	}
	p.proxyScheme = "http"
	if tls {
		p.proxyScheme = "https"
	}
	ta, ok := frontAddr.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("proxy listener %s is not TCP", frontAddr)
	}
	if ta.IP.IsUnspecified() {
		p.proxyPort = strconv.Itoa(ta.Port)
	} else {
		p.proxy = &url.URL{Scheme: p.proxyScheme, Host: ta.String()}
	}
	return p, nil
}

// proxyURL is the proxy's URL for a page reached by r: a copy of its own,
// which the caller may change (handlers run concurrently).
func (p *browserPage) proxyURL(r *http.Request) *url.URL {
	if p.proxy != nil {
		u := *p.proxy
		return &u
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		host = "127.0.0.1"
	}
	return &url.URL{Scheme: p.proxyScheme, Host: net.JoinHostPort(host, p.proxyPort)}
}

func (p *browserPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	origin := p.proxyURL(r)
	origin.Path = ""
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' "+origin.String()+
		"; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	switch path := r.URL.Path; {
	case path == "/api/config":
		if r.Method != http.MethodGet {
			p.fail(w, http.StatusMethodNotAllowed, "GET only")
			return
		}
		p.writeJSON(w, http.StatusOK, map[string]string{
			"bucket": p.bucket, "proxy_url": p.proxyURL(r).String(), "access_key_id": p.creds.AccessKeyID,
			"region": p.region, "expires": fmt.Sprintf("%d minutes", int(presignExpiry/time.Minute)),
		})
	case strings.HasPrefix(path, "/api/presign/"):
		p.presign(w, r, strings.TrimPrefix(path, "/api/presign/"))
	case strings.HasPrefix(path, "/api/"):
		p.fail(w, http.StatusNotFound, "no such endpoint")
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		p.files.ServeHTTP(w, r)
	default:
		p.fail(w, http.StatusMethodNotAllowed, "GET only")
	}
}

// presignRequest is the body of the presign endpoints.
type presignRequest struct {
	Key         string `json:"key"`
	ContentType string `json:"content_type"`
}

// presigned is what they answer: a request for the page to send.
type presigned struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"` // PUT: the signed headers to send
	Fields  map[string]string `json:"fields,omitempty"`  // POST: the form's fields, before the file
}

func (p *browserPage) presign(w http.ResponseWriter, r *http.Request, op string) {
	if r.Method != http.MethodPost {
		p.fail(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	// JSON only: a form of another origin cannot post here without a
	// preflight, which this origin does not answer.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		p.fail(w, http.StatusUnsupportedMediaType, "send application/json")
		return
	}
	var in presignRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		p.fail(w, http.StatusBadRequest, "request body: "+err.Error())
		return
	}
	if op != "list" {
		if err := checkUpload(in); err != nil {
			p.fail(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	var (
		out *presigned
		err error
	)
	proxyURL := p.proxyURL(r)
	switch op {
	case "list":
		out, err = p.presignList(r.Context(), proxyURL)
	case "put":
		out, err = p.presignPut(r.Context(), proxyURL, in)
	case "post":
		out, err = p.presignPost(r.Context(), proxyURL, in)
	default:
		p.fail(w, http.StatusNotFound, "no such endpoint")
		return
	}
	if err != nil {
		p.log.Error("browser page: presign", slog.String("op", op), slog.Any("error", err))
		p.fail(w, http.StatusInternalServerError, "presign failed")
		return
	}
	p.log.Debug("browser page: presigned", slog.String("op", op), slog.String("bucket", p.bucket), slog.String("key", in.Key))
	p.writeJSON(w, http.StatusOK, out)
}

// checkUpload checks the key and the content type of an upload.
func checkUpload(in presignRequest) error {
	switch {
	case in.Key == "":
		return errors.New("a key is needed")
	case len(in.Key) > maxKeyBytes:
		return fmt.Errorf("the key is longer than %d bytes", maxKeyBytes)
	case !utf8.ValidString(in.Key):
		return errors.New("the key is not UTF-8")
	}
	if ct := in.ContentType; ct != "" {
		if _, _, err := mime.ParseMediaType(ct); err != nil || len(ct) > 256 {
			return errors.New("content_type is not a media type")
		}
	}
	return nil
}

// presignList presigns ListObjectsV2 of the bucket. The SDK's PresignClient
// has no presigner for it: the SigV4 signer presigns the request itself.
func (p *browserPage) presignList(ctx context.Context, proxyURL *url.URL) (*presigned, error) {
	u := *proxyURL
	u.Path = "/" + p.bucket
	u.RawQuery = url.Values{
		"list-type":     {"2"},
		"X-Amz-Expires": {strconv.Itoa(int(presignExpiry / time.Second))},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	signed, _, err := signer.PresignHTTP(ctx, p.creds, req, "UNSIGNED-PAYLOAD", "s3", p.region, time.Now())
	if err != nil {
		return nil, err
	}
	return &presigned{Method: http.MethodGet, URL: signed}, nil
}

// client is an S3 client of the proxy at proxyURL, signing with the page's key.
func (p *browserPage) client(proxyURL *url.URL) *s3.PresignClient {
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(proxyURL.String()),
		UsePathStyle: true,
		Region:       p.region,
		Credentials:  credentials.StaticCredentialsProvider{Value: p.creds},
	})
	return s3.NewPresignClient(c, s3.WithPresignExpires(presignExpiry))
}

// presignPut presigns PutObject; the page sends the signed headers with it.
func (p *browserPage) presignPut(ctx context.Context, proxyURL *url.URL, in presignRequest) (*presigned, error) {
	put := &s3.PutObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(in.Key)}
	if in.ContentType != "" {
		put.ContentType = aws.String(in.ContentType)
	}
	req, err := p.client(proxyURL).PresignPutObject(ctx, put)
	if err != nil {
		return nil, err
	}
	out := &presigned{Method: req.Method, URL: req.URL, Headers: map[string]string{}}
	for name, values := range req.SignedHeader {
		if !strings.EqualFold(name, "Host") && len(values) > 0 {
			out.Headers[name] = values[0]
		}
	}
	return out, nil
}

// presignPost presigns a POST Object form: a SigV4-signed policy that allows
// this key, this content type and a 201 answer (S3's PostResponse XML, with
// the object's Location, Key and ETag).
func (p *browserPage) presignPost(ctx context.Context, proxyURL *url.URL, in presignRequest) (*presigned, error) {
	extra := map[string]string{"success_action_status": "201"}
	if in.ContentType != "" {
		extra["Content-Type"] = in.ContentType
	}
	conditions := make([]any, 0, len(extra))
	for name, v := range extra {
		conditions = append(conditions, map[string]string{name: v})
	}
	req, err := p.client(proxyURL).PresignPostObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(in.Key)},
		func(o *s3.PresignPostOptions) {
			o.Expires = presignExpiry
			o.Conditions = conditions
		})
	if err != nil {
		return nil, err
	}
	for name, v := range extra {
		req.Values[name] = v
	}
	return &presigned{Method: http.MethodPost, URL: req.URL, Fields: req.Values}, nil
}

func (p *browserPage) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		p.log.Debug("browser page: write", slog.Any("error", err))
	}
}

func (p *browserPage) fail(w http.ResponseWriter, status int, msg string) {
	p.writeJSON(w, status, map[string]string{"error": msg})
}
