package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// streamResult is one large transfer through one target.
type streamResult struct {
	bytes   int64
	elapsed time.Duration
	cpu     time.Duration // CPU time of the target process during the transfer
	machine time.Duration // CPU time all CPUs were busy during the transfer (client, origin and kernel included)
	peak    int64         // the target process's VmHWM after the transfer
	peakOK  bool          // VmHWM was reset before the transfer
}

func (s streamResult) mibps() float64 { return float64(s.bytes) / (1 << 20) / s.elapsed.Seconds() }

// cpuPerGiB is the target's CPU time per GiB moved.
func (s streamResult) cpuPerGiB() time.Duration {
	return s.perGiB(s.cpu)
}

// machinePerGiB is the machine's busy CPU time per GiB moved.
func (s streamResult) machinePerGiB() time.Duration { return s.perGiB(s.machine) }

func (s streamResult) perGiB(d time.Duration) time.Duration {
	return time.Duration(float64(d) * float64(1<<30) / float64(s.bytes))
}

// streamClient is the client side of the transfers: one connection, large
// buffers.
func streamClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
		MaxIdleConnsPerHost: 4,
	}}
}

// measure runs one transfer against the process pid and samples its CPU time
// and peak RSS around it.
func measure(pid int, transfer func() (int64, error)) (streamResult, error) {
	var res streamResult
	res.peakOK = resetPeakRSS(pid) == nil
	cpu0, err := cpuTime(pid)
	if err != nil {
		return res, err
	}
	busy0, err := machineBusy()
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	n, err := transfer()
	res.elapsed = time.Since(t0)
	if err != nil {
		return res, err
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return res, err
	}
	busy1, err := machineBusy()
	if err != nil {
		return res, err
	}
	res.bytes, res.cpu, res.machine = n, cpu1-cpu0, busy1-busy0
	res.peak, err = peakRSS(pid)
	return res, err
}

// put uploads body (length bytes) to rawURL with headers h.
func put(c *http.Client, rawURL string, h http.Header, body io.Reader, length, payload int64) (int64, error) {
	r, err := http.NewRequest(http.MethodPut, rawURL, body)
	if err != nil {
		return 0, err
	}
	for k, v := range h {
		r.Header[k] = v
	}
	r.ContentLength = length
	resp, err := c.Do(r)
	if err != nil {
		return 0, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("PUT: status %d: %s", resp.StatusCode, msg)
	}
	if got := resp.Header.Get("X-Origin-Payload"); got != strconv.FormatInt(payload, 10) {
		return 0, fmt.Errorf("PUT: the origin received a payload of %s bytes, not %d", got, payload)
	}
	return payload, nil
}

// get downloads rawURL with headers h and checks its length.
func get(c *http.Client, rawURL string, h http.Header, want int64) (int64, error) {
	r, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, err
	}
	for k, v := range h {
		r.Header[k] = v
	}
	resp, err := c.Do(r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return 0, fmt.Errorf("GET: status %d: %s", resp.StatusCode, msg)
	}
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	if n != want {
		return n, fmt.Errorf("GET: %d bytes, want %d", n, want)
	}
	return n, nil
}
