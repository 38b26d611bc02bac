package graph

import (
	"encoding/json"
	"reflect"
	"testing"
)

// recordTypes gives a fresh value of the type each record kind decodes to.
var recordTypes = map[RecordKind]func() any{
	RecordRight:  func() any { return new(Right) },
	RecordSelf:   func() any { return new(SelfRights) },
	RecordFolder: func() any { return new(Folder) },
	RecordRule:   func() any { return new(PlacementRule) },
	RecordUser:   func() any { return new(User) },
	RecordGrant:  func() any { return new(Grant) },
	RecordLock:   func() any { return new(Lock) },
}

// FuzzRecordDecode holds the record decoder (encoding/json/v2) to
// encoding/json on what encoding/json writes: any value encoding/json
// decodes into a record's type, encoded again by it, decodes the same in
// both, for every kind of record.
func FuzzRecordDecode(f *testing.F) {
	f.Add([]byte(`{"id":"x","name":"Café <&>","parent":"a","labels":{"k":"v","":""}}`))
	f.Add([]byte(`{"id":"u","name":"\u00e9\ud83d\ude00","class":"staff","state":"active","home":"a1","extras":["b","c"]}`))
	f.Add([]byte(`{"id":"g","holder":{"kind":"user","id":"c"},"target":{"kind":"folder","id":"a"},"rights":["read"],"expires_at":"2027-01-02T03:04:05.123456789+02:00","reason":"visit"}`))
	f.Add([]byte(`{"id":"g","holder":{"kind":"folder","id":"c"},"rights":null,"expires_at":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"name":"r","implies":["r","s"]}`))
	f.Add([]byte(`{"folder":"a","classes":[]}`))
	f.Add([]byte(`{"rights":["read","edit"]}`))
	f.Add([]byte(`{"ID":"x","Parent":"y","id":"z"}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		for kind, fresh := range recordTypes {
			v1 := fresh()
			if json.Unmarshal(value, v1) != nil {
				continue
			}
			written, err := json.Marshal(v1)
			if err != nil {
				t.Fatalf("%s: encode %#v: %v", kind, v1, err)
			}
			var d decoded
			if err := d.add([]Record{{Kind: kind, ID: recordKey(kind, v1), Value: written}}); err != nil {
				if validID(recordKey(kind, v1)) {
					t.Fatalf("%s: decode %s: %v", kind, written, err)
				}
				continue
			}
			again := fresh()
			if err := json.Unmarshal(written, again); err != nil {
				t.Fatalf("%s: encoding/json refuses what it wrote, %s: %v", kind, written, err)
			}
			if got := decodedValue(&d, kind); !reflect.DeepEqual(got, again) {
				t.Fatalf("%s: %s decodes to\n%#v\nwith encoding/json and to\n%#v\nwith the record decoder", kind, written, again, got)
			}
		}
	})
}

// recordKey is the key a record holding v is stored under.
func recordKey(kind RecordKind, v any) string {
	switch v := v.(type) {
	case *Right:
		return v.Name
	case *SelfRights:
		return selfKey
	case *Folder:
		return v.ID
	case *PlacementRule:
		return v.Folder
	case *User:
		return v.ID
	case *Grant:
		return v.ID
	case *Lock:
		return v.ID
	}
	panic("no record type for " + string(kind))
}

// decodedValue returns a pointer to the one value of kind d holds.
func decodedValue(d *decoded, kind RecordKind) any {
	switch kind {
	case RecordRight:
		return &d.rights[0]
	case RecordSelf:
		return d.self
	case RecordFolder:
		return &d.folders[0]
	case RecordRule:
		return &d.rules[0]
	case RecordUser:
		return &d.users[0]
	case RecordGrant:
		return &d.grants[0]
	case RecordLock:
		return &d.locks[0]
	}
	panic("no record type for " + string(kind))
}
