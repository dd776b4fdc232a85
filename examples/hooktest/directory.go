// Package hooktest shows how to unit-test your own proxy hooks. Directory is a
// small, made-up set of hooks of the kind a real deployment writes (there,
// backed by a database): tenants own the buckets named "<tenant>-…", each
// tenant's buckets live on the tenant's own object store, and clients belong
// to tenants. directory_test.go tests the hooks twice: alone, as plain
// functions, and behind a real proxy driven by the AWS SDK, with httptest
// servers as the object stores.
//
//	go test ./hooktest
package hooktest

import (
	"context"
	"net/http"
	"strings"

	"github.com/osproxy/proxy"
)

// Store is where a tenant's buckets live and how the proxy reaches them.
type Store struct {
	Endpoint    proxy.Endpoint
	Credentials proxy.Credentials
}

// Directory answers the proxy's three questions from its tables.
type Directory struct {
	Stores    map[string]Store  // tenant → its object store
	Members   map[string]string // client access key id → tenant
	Suspended map[string]bool   // tenants whose clients are refused
}

// errSuspended is an S3 error of the hooks' own: a hook may answer the client
// with any S3 status and code by returning a *proxy.Error.
var errSuspended = &proxy.Error{StatusCode: http.StatusForbidden, Code: "AccountProblem", Message: "This tenant is suspended."}

// Authorize lets a client use the buckets of its own tenant. (A directory
// in a database would return the database's errors: any error but an S3 one
// makes the proxy answer 503, and ask again on the next request.)
func (d *Directory) Authorize(_ context.Context, token, bucket string) (bool, error) {
	tenant, ok := d.Members[token]
	if !ok {
		return false, nil
	}
	if d.Suspended[tenant] {
		return false, errSuspended
	}
	return tenantOf(bucket) == tenant, nil
}

// Endpoint says where a bucket lives: on its tenant's store.
func (d *Directory) Endpoint(_ context.Context, bucket string) (proxy.Endpoint, error) {
	s, err := d.store(bucket)
	return s.Endpoint, err
}

// Credentials says how the proxy signs for a bucket: with its tenant's keys.
func (d *Directory) Credentials(_ context.Context, bucket string) (proxy.Credentials, error) {
	s, err := d.store(bucket)
	return s.Credentials, err
}

func (d *Directory) store(bucket string) (Store, error) {
	s, ok := d.Stores[tenantOf(bucket)]
	if !ok {
		return Store{}, proxy.ErrNoSuchBucket
	}
	return s, nil
}

// tenantOf is the tenant part of a bucket name: "acme" for "acme-reports".
func tenantOf(bucket string) string {
	tenant, _, _ := strings.Cut(bucket, "-")
	return tenant
}

// Options are the proxy options that install the directory's hooks.
func (d *Directory) Options() []proxy.Option {
	return []proxy.Option{
		proxy.WithAuthorizer(d.Authorize),
		proxy.WithEndpoint(d.Endpoint),
		proxy.WithCredentials(d.Credentials),
	}
}
