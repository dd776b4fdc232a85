package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/osproxy/proxy"
)

// TestRouter drives the service with the AWS SDK configured with the /s3
// endpoint, and its own routes with plain HTTP.
func TestRouter(t *testing.T) {
	up, err := startInMemoryS3()
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	p, err := newS3Proxy(up.Addr().(*net.TCPAddr).Port, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(newMux(p))
	defer srv.Close()

	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL + "/s3"), // as aws --endpoint-url http://127.0.0.1:8080/s3
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, keySecret, ""),
		Retryer:      aws.NopRetryer{},
	})
	ctx := t.Context()
	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != bucket {
		t.Fatalf("ListBuckets: %v, %v", lb, err)
	}
	body := []byte("through the router\n")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/note.txt"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/note.txt")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("GetObject = %q, want %q", got, body)
	}

	// A wrong key is refused at the proxy.
	bad := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL + "/s3"), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(keyID, "wrong", ""), Retryer: aws.NopRetryer{},
	})
	_, err = bad.ListBuckets(ctx, &s3.ListBucketsInput{})
	if re, ok := errors.AsType[*awshttp.ResponseError](err); !ok || re.HTTPStatusCode() != http.StatusForbidden {
		t.Errorf("ListBuckets with a wrong secret: %v, want 403", err)
	}

	// The service's own routes still work.
	resp, err := http.Get(srv.URL + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(b), "hello") {
		t.Errorf("GET /hello = %s %q", resp.Status, b)
	}

	// What the comment in newMux warns about: ServeMux redirects a path
	// holding "//" instead of routing it.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(srv.URL + "/s3/" + bucket + "/a//b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 {
		t.Errorf("GET /s3/files/a//b = %s; ServeMux no longer cleans paths? Update the comment in newMux", resp.Status)
	}
}

// TestRouteBeforeMux checks the way around path cleaning that the comment in
// newMux gives: keys with "//" and "./" reach the upstream byte-exact.
func TestRouteBeforeMux(t *testing.T) {
	up, err := startInMemoryS3()
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	p, err := newS3Proxy(up.Addr().(*net.TCPAddr).Port, slog.New(slog.DiscardHandler), proxy.WithPathPrefix("/s3"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mux := newMux(nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/s3/") {
			p.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()

	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL + "/s3"), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(keyID, keySecret, ""), Retryer: aws.NopRetryer{},
	})
	for _, key := range []string{"a//b", "./c", "d/../e"} {
		if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(key)}); err != nil {
			t.Errorf("PutObject %q: %v", key, err)
			continue
		}
		out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Errorf("GetObject %q: %v", key, err)
			continue
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(got) != key {
			t.Errorf("GetObject %q = %q", key, got)
		}
	}
}
