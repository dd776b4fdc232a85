package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// hmacKeys returns the HMAC keys to sign t's upstream requests with: its
// static ones, or those its provider hands out now (Credentials.Provider).
func (p *Proxy) hmacKeys(ctx context.Context, t *target) (aws.Credentials, error) {
	c := t.creds
	if c.Provider == nil {
		return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
	}
	return p.providers.get(ctx, c.Provider, c.Provider)
}

// providerCreds caches the keys of every credentials provider (see expiring):
// one retrieval per provider for a burst, refreshed ahead of expiry, backing
// off after failures. At most WithHookConcurrency retrievals run at once.
type providerCreds struct {
	*expiring[aws.CredentialsProvider, aws.CredentialsProvider, aws.Credentials]
	gate *hookGate
}

func newProviderCreds(cfg *config) *providerCreds {
	c := &providerCreds{gate: newHookGate(cfg.hookConcurrency, nil)}
	c.expiring = newExpiring(cfg, "credentials", "upstream credentials", StepCredentials, cfg.hookTimeout, c.retrieve,
		func(p aws.CredentialsProvider) slog.Attr { return slog.String("provider", fmt.Sprintf("%T", p)) })
	return c
}

// retrieve asks a provider for its keys, and says when they expire (zero:
// they cannot). A provider that fails, or answers without keys or with keys
// already expired, is 503 ServiceUnavailable; nothing it returns is logged.
func (c *providerCreds) retrieve(ctx context.Context, p aws.CredentialsProvider, _ *slog.Logger) (aws.Credentials, time.Time, *Error) {
	if !c.gate.enter() {
		return aws.Credentials{}, time.Time{}, errSlowDown.with(fmt.Errorf("credentials providers: %d retrievals in flight", cap(c.gate.slots)))
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
		return aws.Credentials{}, time.Time{}, errServiceUnavailable.with(fmt.Errorf("credentials provider %T: %w", p, err))
	case !creds.HasKeys():
		return aws.Credentials{}, time.Time{}, errServiceUnavailable.with(fmt.Errorf("credentials provider %T returned no keys", p))
	case !creds.CanExpire:
		return creds, time.Time{}, nil
	case creds.Expires.IsZero():
		return aws.Credentials{}, time.Time{}, errServiceUnavailable.with(errors.New("credentials that can expire without an expiry"))
	}
	return creds, creds.Expires, nil
}
