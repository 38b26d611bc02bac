module github.com/canopy-authz/canopy

go 1.26.8

require (
	go.etcd.io/bbolt v1.5.0
	sigs.k8s.io/yaml v1.6.0
)

require (
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	golang.org/x/sys v0.45.0 // indirect
)
