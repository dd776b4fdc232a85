package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is one re-executed harness process.
type child struct {
	name  string
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startChild runs the harness binary in mode, pinned to cpu (a taskset CPU
// list, e.g. "1" or "0,1") with taskset when cpu is not empty, and waits for
// its address.
func startChild(name, mode, cpu string, env []string, args ...string) (*child, error) {
	return startChildNice(name, mode, cpu, 0, env, args...)
}

// startChildNice is startChild with a nice value for the child's threads.
func startChildNice(name, mode, cpu string, nice int, env []string, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	argv := append([]string{exe, "-mode", mode}, args...)
	if cpu != "" {
		argv = append([]string{"taskset", "-c", cpu}, argv...)
	}
	if nice != 0 {
		argv = append([]string{"nice", "-n", strconv.Itoa(nice)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		addr, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			c.stop()
			return nil, fmt.Errorf("%s did not start (%q)", name, l)
		}
		c.addr = addr
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s did not start within 30 s", name)
	}
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop closes the child's standard input (it exits) and kills it if it is
// still there after a second.
func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// cpuTime is the CPU time (user + system) a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	// Fields 14 and 15 of stat (utime, stime), counted from the state field (3).
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	return time.Duration(ut+st) * time.Second / ticksPerSecond, nil
}

// ticksPerSecond is USER_HZ on Linux, the unit of /proc's CPU times.
const ticksPerSecond = 100

// machineBusy is the CPU time all CPUs have spent busy since boot: the first
// line of /proc/stat less its idle, iowait and steal columns (guest time is
// in user already; steal is the hypervisor's).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("unexpected /proc/stat format")
	}
	var busy int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, errors.New("unexpected /proc/stat format")
		}
		if i != 3 && i != 4 && i != 7 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / ticksPerSecond, nil
}

// peakRSS returns a process's VmHWM in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// resetPeakRSS sets a process's VmHWM back to its current RSS (Linux ≥ 4.0).
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// pinSelf pins every thread of this process to cpu.
func pinSelf(cpu string) error { return pin(os.Getpid(), cpu) }

// pin pins every thread of process pid to cpu (a taskset CPU list); threads
// started later inherit it from the thread that starts them.
func pin(pid int, cpu string) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpu, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %v: %s", err, out)
	}
	return nil
}

// renice sets the nice value of every thread of process pid (on Linux a
// thread's own; threads started later inherit it).
func renice(pid, nice int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("renice thread %d: %w", tid, err)
		}
	}
	return nil
}
