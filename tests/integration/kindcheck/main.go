// kindcheck reads a kind cluster config the way `kind create cluster --config` does (kind's own
// loader, defaulting and validation) and applies its containerdConfigPatches to a containerd config
// the way kind's create flow does, then prints the result as JSON. tests/integration/test_gpu.py
// builds it inside a copy of the kind module (it imports kind's internal packages) and checks the
// config that odh-appliance renders with GPU on. It creates nothing.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"sigs.k8s.io/kind/pkg/internal/apis/config/encoding"
	"sigs.k8s.io/kind/pkg/internal/patch"
)

type mount struct {
	HostPath      string `json:"hostPath"`
	ContainerPath string `json:"containerPath"`
}

type result struct {
	Nodes             int               `json:"nodes"`
	Image             string            `json:"image"`
	Labels            map[string]string `json:"labels"`
	ExtraMounts       []mount           `json:"extraMounts"`
	PatchedContainerd string            `json:"patchedContainerd"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kindcheck KIND_CONFIG CONTAINERD_CONFIG")
		os.Exit(2)
	}
	cfg, err := encoding.Load(os.Args[1])
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalid kind config:", err)
		os.Exit(1)
	}
	containerd, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	patched := string(containerd)
	if len(cfg.ContainerdConfigPatches) > 0 || len(cfg.ContainerdConfigPatchesJSON6902) > 0 {
		patched, err = patch.TOML(patched, cfg.ContainerdConfigPatches, cfg.ContainerdConfigPatchesJSON6902)
		if err != nil {
			fmt.Fprintln(os.Stderr, "containerd patch failed:", err)
			os.Exit(1)
		}
	}
	node := cfg.Nodes[0]
	out := result{Nodes: len(cfg.Nodes), Image: node.Image, Labels: node.Labels, PatchedContainerd: patched}
	for _, m := range node.ExtraMounts {
		out.ExtraMounts = append(out.ExtraMounts, mount{m.HostPath, m.ContainerPath})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
