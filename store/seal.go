package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// A sealed backup is the bbolt copy followed by a one-line trailer with
// its size and SHA-256, so that a restore can tell a damaged backup from
// a good one before bbolt reads a byte of it: bbolt keeps no checksums,
// and a flipped byte in a value would otherwise restore as data. bbolt
// itself reads a sealed file as it is, ignoring what follows its pages.
//
//	<the copy>\ncanopy-backup v1 size=123456 sha256=9f86d0...\n

// sealPrefix begins the trailer.
const sealPrefix = "\ncanopy-backup v1 size="

// Seal writes the trailer of a copy of size bytes whose SHA-256 is sum.
func Seal(w io.Writer, size int64, sum []byte) error {
	if len(sum) != sha256.Size {
		return fmt.Errorf("store: seal: a SHA-256 is %d bytes, not %d", sha256.Size, len(sum))
	}
	_, err := fmt.Fprintf(w, "%s%d sha256=%s\n", sealPrefix, size, hex.EncodeToString(sum))
	return err
}

// unseal reads the trailer of the file at path, if it has one, and checks
// the copy before it against it. It returns the copy's size and whether
// the file is sealed; a sealed file whose copy does not match its trailer
// is an error.
func unseal(path string) (int64, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	tail := make([]byte, min(info.Size(), 256))
	if _, err := f.ReadAt(tail, info.Size()-int64(len(tail))); err != nil {
		return 0, false, err
	}
	at := bytes.LastIndex(tail, []byte(sealPrefix))
	if at < 0 {
		return info.Size(), false, nil
	}
	line := string(tail[at+len(sealPrefix):])
	body, ended := strings.CutSuffix(line, "\n")
	sizeText, digest, ok := strings.Cut(body, " sha256=")
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if !ended || !ok || err != nil || strings.Contains(body, "\n") {
		return 0, true, fmt.Errorf("damaged: its trailer %q cannot be read", line)
	}
	if want := info.Size() - int64(len(tail)-at); size != want {
		return 0, true, fmt.Errorf("damaged: %d bytes before its trailer, which names %d", want, size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return 0, true, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return 0, true, fmt.Errorf("damaged: its SHA-256 is %s, its trailer says %s", got, digest)
	}
	return size, true, nil
}
