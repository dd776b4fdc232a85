package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/jellydator/ttlcache/v3"
)

// upstreamKeys are HMAC keys for upstream requests, with the signer that
// signs with them (upstreamSigners).
type upstreamKeys struct {
	aws.Credentials
	signer *v4.Signer
}

// upstreamSigners hands out the signer of each set of upstream HMAC keys: one
// per access key id and secret, shared by the buckets that have them (those
// of one instance), at most upstreamSignerCapacity kept. aws-sdk-go-v2's
// signer caches one derived signing key per region, checked against the
// access key id only: one signer for all keys would sign with a key derived
// from another secret of the same access key id (a secret regenerated for its
// key, as Ceph and MinIO allow), and buckets of one region with different
// keys would each derive theirs again, under the signer's write lock, on
// every request. A signer is found when a bucket is resolved or a provider's
// keys are retrieved, not on each request.
type upstreamSigners struct {
	cache *ttlcache.Cache[signerID, *v4.Signer]
}

type signerID struct {
	secret      [sha256.Size]byte // a digest: the cache holds no secret
	accessKeyID string
}

const upstreamSignerCapacity = 10_000

func newUpstreamSigners() *upstreamSigners {
	return &upstreamSigners{cache: ttlcache.New(ttlcache.WithCapacity[signerID, *v4.Signer](upstreamSignerCapacity))}
}

// keys returns c with its signer.
func (s *upstreamSigners) keys(c aws.Credentials) upstreamKeys {
	id := signerID{secret: sha256.Sum256([]byte(c.SecretAccessKey)), accessKeyID: strings.Clone(c.AccessKeyID)}
	if it := s.cache.Get(id); it != nil {
		return upstreamKeys{Credentials: c, signer: it.Value()}
	}
	it, _ := s.cache.GetOrSet(id, v4.NewSigner(func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = true // the proxy escapes the key itself (sigv4.EncodeKey)
	}))
	return upstreamKeys{Credentials: c, signer: it.Value()}
}

// hmacKeys returns the HMAC keys to sign t's upstream requests with: its
// static ones, or those its provider hands out now (Credentials.Provider).
func (p *Proxy) hmacKeys(ctx context.Context, t *target) (upstreamKeys, error) {
	if t.creds.Provider == nil {
		return t.keys, nil
	}
	return p.providers.get(ctx, t.creds.Provider, t.creds.Provider)
}

// providerCreds caches the keys of every credentials provider (see expiring):
// one retrieval per provider for a burst, refreshed ahead of expiry, backing
// off after failures. At most WithHookConcurrency retrievals run at once.
type providerCreds struct {
	*expiring[aws.CredentialsProvider, aws.CredentialsProvider, upstreamKeys]
	gate    *hookGate
	signers *upstreamSigners
}

func newProviderCreds(cfg *config, signers *upstreamSigners) *providerCreds {
	c := &providerCreds{gate: newHookGate(cfg.hookConcurrency, nil), signers: signers}
	c.expiring = newExpiring(cfg, "credentials", "upstream credentials", StepCredentials, cfg.hookTimeout, c.retrieve,
		func(p aws.CredentialsProvider) slog.Attr { return slog.String("provider", fmt.Sprintf("%T", p)) })
	return c
}

// retrieve asks a provider for its keys, and says when they expire (zero:
// they cannot). A provider that fails, or answers without keys or with keys
// already expired, is 503 ServiceUnavailable; nothing it returns is logged.
func (c *providerCreds) retrieve(ctx context.Context, p aws.CredentialsProvider, _ *slog.Logger) (upstreamKeys, time.Time, *Error) {
	if !c.gate.enter() {
		return upstreamKeys{}, time.Time{}, errSlowDown.with(fmt.Errorf("credentials providers: %d retrievals in flight", cap(c.gate.slots)))
	}
	defer c.gate.leave()
	// A caching provider (*aws.CredentialsCache, which aws-sdk-go-v2's config
	// returns) would hand back the keys it holds until they expire: the
	// proxy's refresh ahead of expiry asks it for new ones.
	if inv, ok := p.(interface{ Invalidate() }); ok {
		inv.Invalidate()
	}
	creds, err := p.Retrieve(ctx)
	switch {
	case err != nil:
		return upstreamKeys{}, time.Time{}, errServiceUnavailable.with(fmt.Errorf("credentials provider %T: %w", p, err))
	case !creds.HasKeys():
		return upstreamKeys{}, time.Time{}, errServiceUnavailable.with(fmt.Errorf("credentials provider %T returned no keys", p))
	case !creds.CanExpire:
		return c.signers.keys(creds), time.Time{}, nil
	case creds.Expires.IsZero():
		return upstreamKeys{}, time.Time{}, errServiceUnavailable.with(errors.New("credentials that can expire without an expiry"))
	}
	return c.signers.keys(creds), creds.Expires, nil
}
