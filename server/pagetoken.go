package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// A page token says where a list or lookup stopped, bound to the query
// that issued it: {"q": a hash of the query, "a": the last id sent}, as
// unpadded base64url. A token that does not decode, or belongs to another
// query, is refused as InvalidArgument; it is never trusted further than
// "continue after this id".
type pageToken struct {
	Query string `json:"q"`
	After string `json:"a"`
}

// queryKey hashes the parts of a request that define its result set.
func queryKey(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:8])
}

func encodeToken(query, after string) string {
	if after == "" {
		return ""
	}
	b, _ := json.Marshal(pageToken{Query: query, After: after})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken returns the id to continue after ("" for no token).
func decodeToken(token, query string) (string, error) {
	if token == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", invalidf("page token %q is not one this server issued", token)
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil || t.After == "" {
		return "", invalidf("page token %q is not one this server issued", token)
	}
	if t.Query != query {
		return "", invalidf("page token %q belongs to another query", token)
	}
	return t.After, nil
}
