// Package examples holds the scenario files that come from the seed
// documents: atlas.yaml (ATLAS Cloud's folder rights) and aptem.yaml
// (Aptem's time-boxed external inspection). The tests replay them, and
// canopyd --example loads the first step of one into an empty store. Read
// them through scenario.Example.
package examples

import "embed"

// Files holds every scenario file, by name (atlas.yaml, aptem.yaml).
//
//go:embed *.yaml
var Files embed.FS
