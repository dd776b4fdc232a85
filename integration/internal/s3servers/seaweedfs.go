package s3servers

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// seaweedStartTimeout bounds the wait for a new SeaweedFS to answer; it
// usually does within 10 s.
const seaweedStartTimeout = time.Minute

// SeaweedFSBinary finds weed: $WEED, else the repository's .cache/bin/weed
// (scripts/test builds it there), else weed on PATH. missing reports that none
// is set up, as opposed to a WEED that is wrong.
func SeaweedFSBinary() (path string, missing bool, err error) {
	if p := os.Getenv("WEED"); p != "" {
		if err := executable(p); err != nil {
			return "", false, fmt.Errorf("WEED=%s: %w", p, err)
		}
		return p, false, nil
	}
	if p := filepath.Join(repoRoot(), ".cache", "bin", "weed"); executable(p) == nil {
		return p, false, nil
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p, false, nil
	}
	return "", true, errors.New("WEED is not set, .cache/bin/weed does not exist and weed is not on PATH")
}

// StartSeaweedFS starts `weed server` from bin (master, volume server, filer
// and S3 gateway in one process, data in a temporary directory) and waits
// until its S3 gateway answers a signed ListBuckets. Its keys are AccessKey
// and SecretKey, given as an identity with every action in -s3.config.
func StartSeaweedFS(bin string) (*Server, error) {
	version := "SeaweedFS"
	if out, err := run(10*time.Second, "", Environ("WEED_"), bin, "version"); err == nil {
		// "version 30GB 4.53  linux amd64"
		if f := strings.Fields(out); len(f) >= 3 && f[0] == "version" {
			version += " " + f[2] + " (" + f[1] + ")"
		}
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var s *Server
		s, err = startSeaweedFS(bin, version)
		if err == nil {
			return s, nil
		}
		// Another process may have taken a port between the check and the
		// start: try again with other ports.
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, err
}

func startSeaweedFS(bin, version string) (*Server, error) {
	dir, err := os.MkdirTemp("", "osp-seaweedfs-")
	if err != nil {
		return nil, err
	}
	s := &Server{Kind: SeaweedFS, Version: version, AccessKey: AccessKey, SecretKey: SecretKey, Region: Region,
		Domain: Domain, dir: dir, kill: true}
	if err := s.startSeaweedFS(bin); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) startSeaweedFS(bin string) error {
	data := filepath.Join(s.dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	type credential struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	type identity struct {
		Name        string       `json:"name"`
		Credentials []credential `json:"credentials"`
		Actions     []string     `json:"actions"`
	}
	conf, err := json.Marshal(map[string][]identity{"identities": {{
		Name:        "osp",
		Credentials: []credential{{s.AccessKey, s.SecretKey}},
		Actions:     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}})
	if err != nil {
		return err
	}
	confFile := filepath.Join(s.dir, "s3.json")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		return err
	}
	ports, err := seaweedPorts(4)
	if err != nil {
		return err
	}
	master, volume, filer, s3 := ports[0], ports[1], ports[2], ports[3]
	s.Port = s3
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s3))
	// weed serves each gRPC service on a Unix socket in /tmp named by its port
	// as well: a killed weed leaves them behind.
	s.cleanup = append(s.cleanup, func() {
		for i, name := range []string{"master", "volume", "filer", "s3"} {
			_ = os.Remove(fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", name, ports[i]+grpcOffset))
		}
	})
	args := []string{"-logtostderr", "server",
		"-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + strconv.Itoa(master), "-master.volumeSizeLimitMB=256",
		"-volume.port=" + strconv.Itoa(volume), "-volume.max=1000", "-volume.preStopSeconds=0",
		"-filer.port=" + strconv.Itoa(filer), "-filer.localSocket=" + filepath.Join(s.dir, "filer.sock"),
		"-s3", "-s3.port=" + strconv.Itoa(s3), "-s3.config=" + confFile, "-s3.domainName=" + s.Domain,
		"-s3.localSocket=" + filepath.Join(s.dir, "s3.sock"),
		// The Iceberg and Lance catalogs would listen on fixed ports.
		"-s3.port.iceberg=0", "-s3.port.lance=0",
	}
	// Each bucket is a collection of volumes of its own, 7 of them by default
	// out of 8: the third bucket would find none. One volume per bucket and
	// room for a thousand (sparse files, not preallocated).
	env := append(Environ("WEED_"), "WEED_MASTER_VOLUME_GROWTH_COPY_1=1")
	if _, err := s.spawn("weed", bin, args, env); err != nil {
		return err
	}
	return s.waitReady(seaweedStartTimeout)
}

// grpcOffset is what weed adds to each port it serves for that service's
// gRPC port.
const grpcOffset = 10000

// seaweedPorts returns n ports p free on 127.0.0.1 a moment ago with p+10000
// free too. They are drawn from 10000–22767 so that both lie below Linux's
// ephemeral range (32768 and up), where FreePort's ports and outgoing
// connections live.
func seaweedPorts(n int) ([]int, error) {
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 200 {
			return nil, errors.New("no free pair of ports p and p+10000 in 10000–32767 on 127.0.0.1")
		}
		p := 10000 + rand.IntN(32768-grpcOffset-10000)
		a, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+grpcOffset)))
		if err != nil {
			_ = a.Close()
			continue
		}
		held = append(held, a, b)
		ports = append(ports, p)
	}
	return ports, nil
}
