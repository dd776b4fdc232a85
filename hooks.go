package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// callHook is the one way the proxy calls a caller's hook (client secrets,
// authorizer, endpoint, credentials): on a context derived from ctx and bounded
// by timeout (WithHookTimeout), with a panic turned into 500 InternalError, as
// a StepHook for a tracer (step). An
// answer given after the deadline is not used: the call fails with the
// context's error. The hook's own error is returned as is; hookError says what
// the client sees.
func callHook[V any](ctx context.Context, timeout time.Duration, name string, step stepper, hook func(context.Context) (V, error)) (v V, err error) {
	ctx, end := step.start(ctx, StepHook, name, nil)
	defer func() { end(StepEnd{Err: err}) }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, err = zero, errInternal.with(fmt.Errorf("%s hook panicked: %v", name, r))
		}
	}()
	v, err = hook(ctx)
	if err == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		var zero V
		return zero, fmt.Errorf("%s hook answered after its deadline: %w", name, ctx.Err())
	}
	return v, err
}

// hookError maps an error from a caller's hook to what the client sees: the S3
// error it is or wraps (ErrNoSuchBucket, ErrAccessDenied, an *Error), or 503
// ServiceUnavailable.
func hookError(name string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return errServiceUnavailable.with(fmt.Errorf("%s hook: %w", name, err))
}

// callGated calls a hook no cache stands in front of (client secrets, bucket
// list) through its gate and callHook; the error is what the client sees.
func callGated[V any](ctx context.Context, g *hookGate, timeout time.Duration, name string, hook func(context.Context) (V, error)) (V, error) {
	var zero V
	if !g.enter() {
		return zero, g.busy(name)
	}
	defer g.leave()
	v, err := callHook(ctx, timeout, name, g.step, hook)
	if err != nil {
		return zero, hookError(name, err)
	}
	return v, nil
}

// hookGate bounds the calls of one hook in flight (WithHookConcurrency), and
// has them traced (Observer.Step).
type hookGate struct {
	slots chan struct{}
	step  stepper
}

func newHookGate(n int, step stepper) *hookGate {
	return &hookGate{slots: make(chan struct{}, n), step: step}
}

// enter takes a slot, or reports false at once when there is none.
func (g *hookGate) enter() bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// leave gives a slot back.
func (g *hookGate) leave() { <-g.slots }

// busy is the error of a call refused at the gate: 503 SlowDown.
func (g *hookGate) busy(name string) error {
	return errSlowDown.with(fmt.Errorf("%s hook: %d calls in flight", name, cap(g.slots)))
}
