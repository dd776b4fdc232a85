package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// IAM token exchange tuning. The refresh-ahead fraction and the exchange
// timeout come from the config (WithIAMRefreshAhead, WithIAMTimeout); the
// cache's own tuning is expiring's.
const (
	// iamGrantType is the OAuth grant type of an API key exchange.
	iamGrantType = "urn:ibm:params:oauth:grant-type:apikey"
	// iamMaxBody bounds the bytes read from an IAM answer. A token answer is a
	// few KiB (access and refresh JWTs).
	iamMaxBody = 1 << 20
	// iamMaxLogMessage bounds the length of an IAM error message in the log.
	iamMaxLogMessage = 512
)

// signBearer gives the upstream request (its headers h) t's IAM bearer token;
// a body framed again as aws-chunked declares its payload method.
func (p *Proxy) signBearer(ctx context.Context, h http.Header, t *target, f framing) error {
	tok, err := p.iam.token(ctx, t.creds.APIKey)
	if err != nil {
		return err
	}
	h.Set("Authorization", "Bearer "+tok)
	if f.reframe {
		h.Set("X-Amz-Content-Sha256", f.payloadHash)
	}
	return nil
}

// errIAMKeyRefused answers requests for a bucket whose IBM Cloud API key IAM
// refuses: a configuration problem upstream, not an outage.
var errIAMKeyRefused = errAccessDenied.withMessage("The upstream IBM Cloud API key was refused by IAM.")

// iamTokens exchanges IBM Cloud IAM API keys for bearer tokens and caches
// them, by the SHA-256 of the API key (see expiring): one exchange per key for
// a burst, refreshed ahead of expiry, backing off after failures. Neither the
// API key nor a token is ever logged or put in an error.
type iamTokens struct {
	*expiring[[sha256.Size]byte, string, string]
	client *http.Client
}

// iamTokenAnswer is IAM's answer to a successful exchange.
type iamTokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Expiration  int64  `json:"expiration"`
}

// iamErrorAnswer is the body of an IAM error answer.
type iamErrorAnswer struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	Context      struct {
		RequestID string `json:"requestId"`
	} `json:"context"`
}

// newIAMTokens returns a token cache that calls cfg.iamEndpoint through rt,
// which must not be nil. Redirects are not followed, so an API key is only ever
// posted to the configured endpoint. Call close to stop its background work.
func newIAMTokens(cfg *config, rt http.RoundTripper) *iamTokens {
	t := &iamTokens{client: &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
	t.expiring = newExpiring(cfg, "iam-token", "IAM token", StepIAM, cfg.iamTimeout, t.exchange, func(d [sha256.Size]byte) slog.Attr {
		return slog.String("key_digest", hex.EncodeToString(d[:6]))
	})
	t.observeFetch = cfg.observer.IAMExchange
	return t
}

// token returns the bearer token to send upstream for apiKey. A usable cached
// token is returned at once (starting a background refresh when it is due);
// otherwise the caller waits for the key's shared exchange or for ctx. Errors
// are *Error: 403 AccessDenied when IAM refuses the key, 503
// ServiceUnavailable when IAM cannot be used (outage, backoff, ctx done).
func (t *iamTokens) token(ctx context.Context, apiKey string) (string, error) {
	if apiKey == "" {
		return "", errIAMKeyRefused.with(errors.New("empty IBM Cloud API key"))
	}
	return t.get(ctx, iamDigest(apiKey), apiKey)
}

// exchange posts apiKey to IAM and returns the token it answers and its
// expiry. Every error is an *Error: errIAMKeyRefused for 400, 401 and 403,
// errServiceUnavailable for anything else. IAM's error code and message are
// logged, never the key.
func (t *iamTokens) exchange(ctx context.Context, apiKey string, log *slog.Logger) (string, time.Time, *Error) {
	form := url.Values{"grant_type": {iamGrantType}, "apikey": {apiKey}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.iamEndpoint, strings.NewReader(form))
	if err != nil {
		return "", time.Time{}, errServiceUnavailable.with(fmt.Errorf("IAM request: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	resp, err := t.client.Do(req)
	if err != nil {
		return "", time.Time{}, errServiceUnavailable.with(fmt.Errorf("IAM request: %w", err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, iamMaxBody+1))
	if err != nil {
		return "", time.Time{}, errServiceUnavailable.with(fmt.Errorf("reading IAM answer: %w", err))
	}
	if len(body) > iamMaxBody {
		return "", time.Time{}, errServiceUnavailable.with(fmt.Errorf("IAM answer (status %d) exceeds %d bytes", resp.StatusCode, iamMaxBody))
	}

	if resp.StatusCode != http.StatusOK {
		return "", time.Time{}, t.iamFailure(resp.StatusCode, body, apiKey, log)
	}
	var a iamTokenAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return "", time.Time{}, errServiceUnavailable.with(fmt.Errorf("decoding IAM answer: %w", err))
	}
	expiry, err := iamExpiry(a, t.cfg.now())
	if err != nil {
		return "", time.Time{}, errServiceUnavailable.with(err)
	}
	return a.AccessToken, expiry, nil
}

// iamFailure logs an IAM error answer and maps it to the S3 error to return.
func (t *iamTokens) iamFailure(status int, body []byte, apiKey string, log *slog.Logger) *Error {
	var a iamErrorAnswer
	_ = json.Unmarshal(body, &a) // best effort: the status decides
	attrs := []any{
		slog.Int("status", status),
		slog.String("error_code", iamLogText(a.ErrorCode, apiKey)),
		slog.String("error_message", iamLogText(a.ErrorMessage, apiKey)),
		slog.String("iam_request_id", iamLogText(a.Context.RequestID, apiKey)),
	}
	code := iamLogText(a.ErrorCode, apiKey)
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		log.Warn("IAM refused the API key", attrs...)
		return errIAMKeyRefused.with(fmt.Errorf("IAM refused the API key: status %d, code %q", status, code))
	default:
		log.Warn("IAM error answer", attrs...)
		return errServiceUnavailable.with(fmt.Errorf("IAM answered status %d, code %q", status, code))
	}
}

// iamLogText makes a string from an IAM answer fit for the log: the API key
// redacted should IAM ever echo it, bounded in length, valid UTF-8.
func iamLogText(s, apiKey string) string {
	if apiKey != "" {
		s = strings.ReplaceAll(s, apiKey, "[redacted]")
	}
	if len(s) > iamMaxLogMessage {
		s = s[:iamMaxLogMessage]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return s
}

// iamExpiry is the expiry of the token of IAM's answer, received at now:
// `expiration` (absolute) is trusted over `expires_in` (relative) when both
// are given, the lifetime capped at expMaxLifetime; an answer without a token
// or either is an error.
func iamExpiry(a iamTokenAnswer, now time.Time) (time.Time, error) {
	if a.AccessToken == "" {
		return time.Time{}, errors.New("IAM answer without access_token")
	}
	var life time.Duration
	switch {
	case a.Expiration > 0:
		life = time.Unix(a.Expiration, 0).Sub(now)
	case a.ExpiresIn > 0:
		life = time.Duration(min(a.ExpiresIn, int64(expMaxLifetime/time.Second))) * time.Second
	default:
		return time.Time{}, errors.New("IAM answer without expiration or expires_in")
	}
	return now.Add(min(life, expMaxLifetime)), nil // keeps now's monotonic reading
}

// iamDigest returns the sha256 of apiKey without allocating for keys of up to
// 256 bytes (IBM API keys have 44).
func iamDigest(apiKey string) [sha256.Size]byte {
	var buf [256]byte
	if len(apiKey) <= len(buf) {
		n := copy(buf[:], apiKey)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(apiKey))
}
