// tlogcheck: an outsider's check of a custody ledger published as C2SP tlog-tiles, with Go's
// golang.org/x/mod/sumdb/note and sumdb/tlog (not custody's code).
//
//	tlogcheck DIR LOG_VKEY OLD_CHECKPOINT_FILE LEAF_INDEX LEAF_FILE [WITNESS_VKEY...]
//
// It verifies DIR/checkpoint's log signature, proves with tiles read from DIR that the entry
// in LEAF_FILE is leaf LEAF_INDEX, that the tree of OLD_CHECKPOINT_FILE is a prefix of the
// current one, and that each witness cosigned the checkpoint (C2SP tlog-cosignature v1).
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type dirTiles struct{ dir string }

func (d dirTiles) Height() int { return 8 }

func (d dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		// Go names tiles tile/<H>/<L>/<N>; C2SP tlog-tiles has no height element.
		path := "tile/" + strings.TrimPrefix(t.Path(), "tile/8/")
		data, err := os.ReadFile(filepath.Join(d.dir, path))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (d dirTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func parseTree(text string) (origin string, tree tlog.Tree, err error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 {
		return "", tree, fmt.Errorf("short checkpoint")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return "", tree, err
	}
	h, err := tlog.ParseHash(lines[2])
	if err != nil {
		return "", tree, err
	}
	return lines[0], tlog.Tree{N: n, Hash: h}, nil
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 6 {
		fail("usage: tlogcheck DIR LOG_VKEY OLD_CHECKPOINT_FILE LEAF_INDEX LEAF_FILE [WITNESS_VKEY...]")
	}
	dir, vkey := os.Args[1], os.Args[2]
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("log key: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		fail("%v", err)
	}
	n, err := note.Open(raw, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	origin, tree, err := parseTree(n.Text)
	if err != nil {
		fail("checkpoint: %v", err)
	}
	if origin != verifier.Name() {
		fail("origin %q is not the key's name %q", origin, verifier.Name())
	}
	reader := tlog.TileHashReader(tree, dirTiles{dir})

	index, err := strconv.ParseInt(os.Args[4], 10, 64)
	if err != nil {
		fail("%v", err)
	}
	leaf, err := os.ReadFile(os.Args[5])
	if err != nil {
		fail("%v", err)
	}
	rproof, err := tlog.ProveRecord(tree.N, index, reader)
	if err != nil {
		fail("inclusion proof from tiles: %v", err)
	}
	if err := tlog.CheckRecord(rproof, tree.N, tree.Hash, index, tlog.RecordHash(leaf)); err != nil {
		fail("inclusion: %v", err)
	}
	fmt.Printf("inclusion OK: leaf %d in tree %d\n", index, tree.N)

	oldRaw, err := os.ReadFile(os.Args[3])
	if err != nil {
		fail("%v", err)
	}
	oldNote, err := note.Open(oldRaw, note.VerifierList(verifier))
	if err != nil {
		fail("old checkpoint signature: %v", err)
	}
	_, old, err := parseTree(oldNote.Text)
	if err != nil {
		fail("old checkpoint: %v", err)
	}
	tproof, err := tlog.ProveTree(tree.N, old.N, reader)
	if err != nil {
		fail("consistency proof from tiles: %v", err)
	}
	if err := tlog.CheckTree(tproof, tree.N, tree.Hash, old.N, old.Hash); err != nil {
		fail("consistency: %v", err)
	}
	fmt.Printf("consistency OK: tree %d extends tree %d\n", tree.N, old.N)

	for _, w := range os.Args[6:] {
		parts := strings.SplitN(w, "+", 3)
		key, err := base64.StdEncoding.DecodeString(parts[2])
		if err != nil || len(key) != 33 || key[0] != 0x04 {
			fail("witness key %s", w)
		}
		found := false
		for _, sig := range n.UnverifiedSigs {
			blob, _ := base64.StdEncoding.DecodeString(sig.Base64)
			if sig.Name != parts[0] || len(blob) != 76 || fmt.Sprintf("%08x", sig.Hash) != parts[1] {
				continue
			}
			id := sha256.Sum256(append([]byte(parts[0]+"\n\x04"), key[1:]...))
			if !bytes.Equal(id[:4], blob[:4]) {
				fail("witness key ID")
			}
			ts := binary.BigEndian.Uint64(blob[4:12])
			msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, n.Text)
			if !ed25519.Verify(key[1:], []byte(msg), blob[12:]) {
				fail("cosignature by %s does not verify", parts[0])
			}
			found = true
		}
		if !found {
			fail("no cosignature by %s", parts[0])
		}
		fmt.Printf("cosignature OK: %s\n", parts[0])
	}
}
