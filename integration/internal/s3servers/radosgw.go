package s3servers

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy/internal/vgwtest"
)

// radosgw of Debian bookworm (Ceph 16.2, Pacific) stores only in RADOS: its
// --rgw-backend-store=dbstore came with Ceph 17. So StartRadosGW starts a
// one-node cluster first: one ceph-mon and one ceph-osd keeping objects in
// memory (memstore), on 127.0.0.1, without cephx, replicas of one, no
// ceph-mgr. The three come up in about 10 s.

// radosgwStartTimeout bounds the whole start: cluster, radosgw and its user.
const radosgwStartTimeout = 2 * time.Minute

// memstoreBytes caps the OSD's memory store: objects that the tests keep at
// once must fit.
const memstoreBytes = 4 << 30

// RadosGWBins are the Ceph programs StartRadosGW runs, by name.
type RadosGWBins map[string]string

// RadosGWBinaries finds radosgw and the programs of its cluster on PATH
// (Debian's radosgw, ceph-mon and ceph-osd packages).
func RadosGWBinaries() (RadosGWBins, error) {
	m, err := lookPath("radosgw", "radosgw-admin", "ceph", "ceph-mon", "ceph-osd", "monmaptool", "ceph-authtool")
	return RadosGWBins(m), err
}

// StartRadosGW starts a one-node Ceph cluster and radosgw in front of it,
// creates a user with AccessKey and SecretKey and waits until radosgw answers
// its signed ListBuckets.
func StartRadosGW(bins RadosGWBins) (*Server, error) {
	dir, err := os.MkdirTemp("", "osp-radosgw-")
	if err != nil {
		return nil, err
	}
	s := &Server{Kind: RadosGW, AccessKey: AccessKey, SecretKey: SecretKey, Region: Region, Domain: Domain, dir: dir,
		kill: true}
	if err := s.startRadosGW(bins); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) startRadosGW(bins RadosGWBins) error {
	deadline := time.Now().Add(radosgwStartTimeout)
	env := Environ("CEPH_")
	if out, err := run(10*time.Second, s.dir, env, bins["radosgw"], "--version"); err == nil {
		// "ceph version 16.2.15 (618f…) pacific (stable)"
		if f := strings.Fields(out); len(f) >= 3 {
			s.Version = "radosgw " + f[2]
		}
	}
	for _, d := range []string{"mon", "osd/osd.0", "run", "log", "rgw"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return err
		}
	}
	monPort, err := vgwtest.FreePort()
	if err != nil {
		return err
	}
	port, err := vgwtest.FreePort()
	if err != nil {
		return err
	}
	if port == monPort {
		return fmt.Errorf("radosgw: the same free port %d twice", port)
	}
	s.Port = port
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for _, n := range []string{"mon.a", "osd.0", "client.rgw"} {
		s.logs = append(s.logs, filepath.Join(s.dir, "log", n+".log"))
	}
	fsid, osdUUID := uuid(), uuid()
	conf := filepath.Join(s.dir, "ceph.conf")
	if err := os.WriteFile(conf, []byte(cephConf(s.dir, fsid, monPort, port)), 0o644); err != nil {
		return err
	}
	c := []string{"-c", conf}
	steps := [][]string{
		{"monmaptool", "--create", "--addv", "a", fmt.Sprintf("[v2:127.0.0.1:%d]", monPort), "--fsid", fsid, filepath.Join(s.dir, "monmap")},
		{"ceph-authtool", "--create-keyring", filepath.Join(s.dir, "mon.keyring"), "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"},
		append([]string{"ceph-mon"}, append(c, "--mkfs", "-i", "a", "--monmap", filepath.Join(s.dir, "monmap"),
			"--keyring", filepath.Join(s.dir, "mon.keyring"))...),
	}
	for _, st := range steps {
		if _, err := run(30*time.Second, s.dir, env, bins[st[0]], st[1:]...); err != nil {
			return fmt.Errorf("radosgw cluster: %w", err)
		}
	}
	if _, err := s.spawn("ceph-mon", bins["ceph-mon"], append(c, "-f", "-i", "a"), env); err != nil {
		return err
	}
	out, err := run(time.Minute, s.dir, env, bins["ceph"], append(c, "--connect-timeout", "50", "osd", "create", osdUUID)...)
	if err != nil {
		return fmt.Errorf("radosgw cluster: %w: %s", err, s.LogTail())
	}
	id := strings.TrimSpace(out)
	if id != "0" {
		return fmt.Errorf("radosgw cluster: ceph osd create gave id %q, not 0", id)
	}
	if _, err := run(time.Minute, s.dir, env, bins["ceph-osd"], append(c, "-i", "0", "--mkfs", "--osd-uuid", osdUUID)...); err != nil {
		return fmt.Errorf("radosgw cluster: %w", err)
	}
	if _, err := s.spawn("ceph-osd", bins["ceph-osd"], append(c, "-f", "-i", "0"), env); err != nil {
		return err
	}
	// radosgw creates its pools and zone on first start; the user is made
	// once it answers, so that radosgw-admin does not race it for them.
	if _, err := s.spawn("radosgw", bins["radosgw"], append(c, "-f", "-n", "client.rgw"), env); err != nil {
		return err
	}
	for {
		if _, _, err := s.do(http.MethodGet, "/", nil); err == nil {
			break
		}
		if err := s.exitedErr(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("radosgw did not answer on %s within %v: %s", s.Addr, radosgwStartTimeout, s.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := run(time.Minute, s.dir, env, bins["radosgw-admin"], append(c, "user", "create", "--uid", "osp",
		"--display-name", "osp", "--access-key", s.AccessKey, "--secret-key", s.SecretKey)...); err != nil {
		return fmt.Errorf("radosgw: %w", err)
	}
	return s.waitReady(time.Until(deadline))
}

// cephConf is the configuration of the cluster and radosgw under dir.
func cephConf(dir, fsid string, monPort, rgwPort int) string {
	return fmt.Sprintf(`[global]
fsid = %[2]s
mon host = v2:127.0.0.1:%[3]d
public addr = 127.0.0.1
ms bind msgr1 = false
# No cephx: the connection modes must then be crc, "secure" needs keys.
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
run dir = %[1]s/run
log file = %[1]s/log/$name.log
log to stderr = false
err to stderr = true
admin socket =
# One OSD: one replica, few placement groups, no ceph-mgr.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
# Commit map changes (the pools radosgw creates) at once rather than each second.
paxos propose interval = 0.05
paxos min wait = 0.01
mon warn on pool no redundancy = false
# A full disk must not stop the monitor of a test.
mon data avail crit = 0
mon data avail warn = 0

[mon]
mon data = %[1]s/mon/$name
mon cluster log file = %[1]s/log/cluster.log
admin socket = %[1]s/run/$name.asok

[osd]
osd data = %[1]s/osd/$name
osd objectstore = memstore
memstore device bytes = %[5]d
osd max object name len = 460
osd max object namespace len = 64
admin socket = %[1]s/run/$name.asok

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:%[4]d
rgw data = %[1]s/rgw
rgw dns name = %[6]s
admin socket = %[1]s/run/$name.asok
`, dir, fsid, monPort, rgwPort, memstoreBytes, Domain)
}

// uuid returns a random version 4 UUID.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
