package awschunked

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"sync"
)

// Checksum is a checksum a trailer can carry.
type Checksum struct {
	Header string           // trailer header name, e.g. "x-amz-checksum-crc32"
	Name   string           // name in messages, e.g. "CRC32"
	Size   int              // digest size in bytes
	New    func() hash.Hash // nil: the package cannot compute it
}

// Checksums are the ten checksums S3 accepts (ChecksumAlgorithm). The
// proxy computes those the standard library has; the XXHASH ones (new is
// nil) it cannot without a dependency of its own: their trailer is checked
// for form (and, in a signed trailer, by its signature) and goes upstream with
// the body, and the upstream verifies the checksum, as it does every one.
var Checksums = []Checksum{
	{"x-amz-checksum-crc32", "CRC32", crc32.Size, func() hash.Hash { return crc32.NewIEEE() }},
	{"x-amz-checksum-crc32c", "CRC32C", crc32.Size, func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }},
	{"x-amz-checksum-crc64nvme", "CRC64NVME", 8, newCRC64NVME},
	{"x-amz-checksum-sha1", "SHA1", sha1.Size, sha1.New},
	{"x-amz-checksum-sha256", "SHA256", sha256.Size, sha256.New},
	{"x-amz-checksum-md5", "MD5", md5.Size, md5.New},
	{"x-amz-checksum-sha512", "SHA512", sha512.Size, sha512.New},
	{"x-amz-checksum-xxhash64", "XXHASH64", 8, nil},
	{"x-amz-checksum-xxhash3", "XXHASH3", 8, nil},
	{"x-amz-checksum-xxhash128", "XXHASH128", 16, nil},
}

// LookupChecksum returns the algorithm of a trailer header name, or nil.
func LookupChecksum(header string) *Checksum {
	for i := range Checksums {
		if Checksums[i].Header == header {
			return &Checksums[i]
		}
	}
	return nil
}

// crc64NVMEPoly is the reversed CRC-64/NVME polynomial.
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

// crc64NVMETables are the slicing-by-8 tables of CRC-64/NVME. hash/crc64
// rebuilds such tables on every large write for polynomials other than ISO
// and ECMA, so the decoder keeps its own.
var crc64NVMETables = sync.OnceValue(func() *[8][256]uint64 {
	t := new([8][256]uint64)
	for i := range 256 {
		crc := uint64(i)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ crc64NVMEPoly
			} else {
				crc >>= 1
			}
		}
		t[0][i] = crc
	}
	for i := range 256 {
		crc := t[0][i]
		for k := 1; k < 8; k++ {
			crc = t[0][crc&0xff] ^ crc>>8
			t[k][i] = crc
		}
	}
	return t
})

// crc64NVME is a hash.Hash64 of CRC-64/NVME.
type crc64NVME struct {
	t   *[8][256]uint64
	crc uint64
}

// newCRC64NVME returns a CRC-64/NVME hash.
func newCRC64NVME() hash.Hash { return &crc64NVME{t: crc64NVMETables()} }

// Write implements hash.Hash.
func (d *crc64NVME) Write(p []byte) (int, error) {
	t, crc := d.t, ^d.crc
	n := len(p)
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint64(p)
		crc = t[7][crc&0xff] ^ t[6][crc>>8&0xff] ^ t[5][crc>>16&0xff] ^ t[4][crc>>24&0xff] ^
			t[3][crc>>32&0xff] ^ t[2][crc>>40&0xff] ^ t[1][crc>>48&0xff] ^ t[0][crc>>56]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc)^b] ^ crc>>8
	}
	d.crc = ^crc
	return n, nil
}

// Sum implements hash.Hash: the big-endian CRC appended to b.
func (d *crc64NVME) Sum(b []byte) []byte { return binary.BigEndian.AppendUint64(b, d.crc) }

// Sum64 implements hash.Hash64.
func (d *crc64NVME) Sum64() uint64 { return d.crc }

// Reset implements hash.Hash.
func (d *crc64NVME) Reset() { d.crc = 0 }

// Size implements hash.Hash.
func (d *crc64NVME) Size() int { return 8 }

// BlockSize implements hash.Hash.
func (d *crc64NVME) BlockSize() int { return 1 }
