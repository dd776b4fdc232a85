package redisuse

// CallsInFlight is c's Redis calls in flight, abandoned ones included.
func CallsInFlight(c *Counter) int { return len(c.calls) }

// LimitCalls makes c hold at most n Redis calls in flight.
func LimitCalls(c *Counter, n int) { c.calls = make(chan struct{}, n) }
