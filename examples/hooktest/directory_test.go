package hooktest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/osproxy/proxy"
)

// The first level: the hooks are plain functions, tested as such.
func TestAuthorize(t *testing.T) {
	d := &Directory{
		Members:   map[string]string{"alice": "acme", "carol": "initech"},
		Suspended: map[string]bool{"initech": true},
	}
	tests := []struct {
		token, bucket string
		want          bool
		wantErr       error
	}{
		{"alice", "acme-data", true, nil},
		{"alice", "acme", true, nil},
		{"alice", "globex-data", false, nil},
		{"alice", "acmex-data", false, nil}, // a prefix is not a tenant
		{"mallory", "acme-data", false, nil},
		{"carol", "initech-data", false, errSuspended},
	}
	for _, tt := range tests {
		got, err := d.Authorize(context.Background(), tt.token, tt.bucket)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("Authorize(%q, %q) = %v, %v; want %v, %v", tt.token, tt.bucket, got, err, tt.want, tt.wantErr)
		}
	}
	if _, err := d.Endpoint(context.Background(), "acme-data"); !errors.Is(err, proxy.ErrNoSuchBucket) {
		t.Errorf("Endpoint of a tenant without a store: %v, want ErrNoSuchBucket", err)
	}
}

// store is an object store for the test: an in-memory S3 behind httptest
// that records which access key ids signed the requests it got.
type store struct {
	*httptest.Server
	mem  *s3mem.Backend
	mu   sync.Mutex
	keys map[string]bool
}

var credential = regexp.MustCompile(`Credential=([^/]+)/`)

func newStore(t *testing.T, buckets ...string) *store {
	t.Helper()
	s := &store{mem: s3mem.New(), keys: map[string]bool{}}
	for _, b := range buckets {
		if err := s.mem.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	fake := gofakes3.New(s.mem).Server()
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := credential.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			s.mu.Lock()
			s.keys[m[1]] = true
			s.mu.Unlock()
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// as is the Store entry of the directory that points at this store.
func (s *store) as(keyID string) Store {
	u, _ := url.Parse(s.URL)
	port, _ := strconv.Atoi(u.Port())
	return Store{
		Endpoint:    proxy.Endpoint{Host: u.Hostname(), Port: port, Scheme: "http", PathStyle: true},
		Credentials: proxy.Credentials{AccessKeyID: keyID, SecretAccessKey: keyID + "-secret"},
	}
}

func (s *store) has(bucket, key string) bool {
	_, err := s.mem.HeadObject(bucket, key)
	return err == nil
}

func (s *store) signedBy(keyID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[keyID] && len(s.keys) == 1
}

// startProxy serves a proxy with the directory's hooks and the given client
// keys, and returns its URL.
func startProxy(t *testing.T, d *Directory, clients map[string]string) string {
	t.Helper()
	p, err := proxy.New(append(d.Options(), proxy.WithClientKeys(clients))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// client is how your users reach the proxy: any S3 client will do.
func client(endpoint, keyID string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, keyID+"-client-secret", ""),
		Retryer:      aws.NopRetryer{},
	})
}

// The second level: the hooks behind a real proxy, which shows what clients
// see (allow, deny, the S3 codes the hooks' errors become) and where their
// requests land.
func TestHooksThroughProxy(t *testing.T) {
	acme, globex := newStore(t, "acme-data"), newStore(t, "globex-data")
	d := &Directory{
		Stores:    map[string]Store{"acme": acme.as("acme-upstream"), "globex": globex.as("globex-upstream"), "initech": acme.as("initech-upstream")},
		Members:   map[string]string{"alice": "acme", "bob": "globex", "carol": "initech", "erin": "hooli"},
		Suspended: map[string]bool{"initech": true},
	}
	clients := map[string]string{}
	for _, id := range []string{"alice", "bob", "carol", "erin", "dave"} {
		clients[id] = id + "-client-secret"
	}
	endpoint := startProxy(t, d, clients)

	tests := []struct {
		name, client, bucket string
		status               int    // 200, or the error's
		code                 string // S3 error code
		lands                *store // where the object must be
	}{
		{"own bucket", "alice", "acme-data", 200, "", acme},
		{"other tenant's bucket", "alice", "globex-data", 403, "AccessDenied", nil},
		{"the other tenant's own", "bob", "globex-data", 200, "", globex},
		{"no tenant", "dave", "acme-data", 403, "AccessDenied", nil},
		{"suspended tenant", "carol", "initech-data", 403, "AccountProblem", nil},
		{"tenant without a store", "erin", "hooli-data", 404, "NoSuchBucket", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "from-" + tt.client
			_, err := client(endpoint, tt.client).PutObject(t.Context(), &s3.PutObjectInput{
				Bucket: aws.String(tt.bucket), Key: aws.String(key), Body: strings.NewReader("payload"),
			})
			checkAnswer(t, err, tt.status, tt.code)
			for _, s := range []*store{acme, globex} {
				if got := s.has(tt.bucket, key); got != (s == tt.lands) {
					t.Errorf("object in %s: %v", s.URL, got)
				}
			}
		})
	}
	// Each store was reached with its own tenant's keys only.
	if !acme.signedBy("acme-upstream") || !globex.signedBy("globex-upstream") {
		t.Errorf("upstream keys: acme %v, globex %v", acme.keys, globex.keys)
	}

	// Reading back through the proxy gives what was written.
	out, err := client(endpoint, "alice").GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("acme-data"), Key: aws.String("from-alice")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if b, _ := io.ReadAll(out.Body); string(b) != "payload" {
		t.Errorf("GetObject = %q", b)
	}
}

// A hook that fails (its database is down, say) gives clients a 503 that
// they retry, never an open door. To test that, wrap the hook.
func TestHookFailure(t *testing.T) {
	acme := newStore(t, "acme-data")
	d := &Directory{Stores: map[string]Store{"acme": acme.as("k")}, Members: map[string]string{"alice": "acme"}}
	down := func(context.Context, string, string) (bool, error) { return false, errors.New("directory unreachable") }
	p, err := proxy.New(append(d.Options(), proxy.WithAuthorizer(down), // a later option wins
		proxy.WithClientKeys(map[string]string{"alice": "alice-client-secret"}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p)
	defer srv.Close()

	_, err = client(srv.URL, "alice").PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String("acme-data"), Key: aws.String("k"), Body: strings.NewReader("x"),
	})
	checkAnswer(t, err, http.StatusServiceUnavailable, "ServiceUnavailable")
	if acme.has("acme-data", "k") {
		t.Error("the object was stored although the authorizer failed")
	}
}

func checkAnswer(t *testing.T, err error, status int, code string) {
	t.Helper()
	if status == http.StatusOK {
		if err != nil {
			t.Errorf("error %v, want success", err)
		}
		return
	}
	if re, ok := errors.AsType[*awshttp.ResponseError](err); !ok || re.HTTPStatusCode() != status {
		t.Errorf("error %v, want HTTP status %d", err, status)
	}
	if ae, ok := errors.AsType[smithy.APIError](err); !ok || ae.ErrorCode() != code {
		t.Errorf("error %v, want code %s", err, code)
	}
}
