package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/osproxy/proxy"
)

// ExampleNew puts the proxy in front of one bucket of a (fake) S3 server and
// sends it a signed request, as any S3 client would.
func ExampleNew() {
	// A stand-in for the real object store: it shows what reaches it.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("upstream got %s %s%s, signed by %s\n", r.Method, r.Host[:strings.Index(r.Host, ":")], r.URL.EscapedPath(),
			strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="), "/")[0])
		_, _ = io.WriteString(w, "hello from the bucket")
	}))
	defer upstream.Close()
	port := upstream.Listener.Addr().(*net.TCPAddr).Port

	p, err := proxy.New(
		proxy.WithBuckets(proxy.Bucket{
			Name:        "reports",
			Endpoint:    proxy.Endpoint{Host: "s3.eu-de.example", Port: port, Scheme: "http", Region: "eu-de"},
			Credentials: proxy.Credentials{AccessKeyID: "UPSTREAM-KEY", SecretAccessKey: "upstream-secret"},
		}),
		// Clients sign with their own keys; the proxy verifies them.
		proxy.WithClientKeys(map[string]string{"alice": "alice-secret"}),
		// Only for this example: reach the "s3.eu-de.example" hosts on loopback.
		proxy.WithTransport(&http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", upstream.Listener.Addr().String())
		}}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	front := httptest.NewServer(p)
	defer front.Close()

	// What an S3 client does: a path-style request signed with SigV4.
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/reports/2026/q3 summary.txt", nil)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	s3Signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }) // S3 signs the path as sent
	_ = s3Signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "alice", SecretAccessKey: "alice-secret"},
		req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// upstream got GET reports.s3.eu-de.example/2026/q3%20summary.txt, signed by UPSTREAM-KEY
	// 200 hello from the bucket
}

// ExampleWithAuthorizer runs the proxy in token mode: the client's access key
// id is taken as its token and handed to the authorizer, unverified.
func ExampleWithAuthorizer() {
	p, err := proxy.New(
		proxy.WithBuckets(proxy.Bucket{
			Name:        "shared",
			Endpoint:    proxy.Endpoint{Host: "s3.us-south.cloud-object-storage.appdomain.cloud"},
			Credentials: proxy.Credentials{APIKey: "ibm-api-key", ServiceInstanceID: "crn:v1:example"},
		}),
		proxy.WithAuthorizer(func(ctx context.Context, token, bucket string) (bool, error) {
			return token == "team-token", nil
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	req := httptest.NewRequest(http.MethodGet, "/shared/file.csv", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=someone-else/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature="+strings.Repeat("0", 64))
	w := httptest.NewRecorder()
	p.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output:
	// 403 application/xml
}
