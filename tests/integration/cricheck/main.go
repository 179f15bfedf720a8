// cricheck runs one pod with one container through a container runtime's CRI socket, as the kubelet
// would (RunPodSandbox, CreateContainer, StartContainer), waits for it to exit and prints what happened
// as JSON. tests/integration/test_gpu.py builds it inside a copy of the k8s.io/cri-api module and runs
// it in a GPU node container whose containerd has the kind config's nvidia patch, to check the node's
// runtime the way pods use it, without a kubelet or a cluster.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type envFlags []string

func (e *envFlags) String() string     { return strings.Join(*e, ",") }
func (e *envFlags) Set(v string) error { *e = append(*e, v); return nil }

type result struct {
	Stage    string `json:"stage"` // where it stopped: sandbox, create, start, wait, exited
	Error    string `json:"error,omitempty"`
	ExitCode int32  `json:"exitCode"`
	Log      string `json:"log"`
}

func main() {
	socket := flag.String("socket", "/run/containerd/containerd.sock", "CRI socket")
	image := flag.String("image", "", "image (present in the runtime)")
	handler := flag.String("handler", "", "runtime handler (a RuntimeClass's handler; empty: the default)")
	privileged := flag.Bool("privileged", false, "privileged pod and container")
	nvidiaAll := flag.Bool("nvidia-all", false, "mount /dev/null at /var/run/nvidia-container-devices/all")
	logDir := flag.String("log-dir", "/tmp/cricheck", "pod log directory")
	var envs envFlags
	flag.Var(&envs, "env", "KEY=VALUE (repeatable)")
	flag.Parse()
	if *image == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: cricheck -image IMAGE [options] 'shell command'")
		os.Exit(2)
	}
	out := run(*socket, *image, *handler, *privileged, *nvidiaAll, *logDir, envs, flag.Arg(0))
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func run(socket, image, handler string, privileged, nvidiaAll bool, logDir string, envs []string, command string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return result{Stage: "connect", Error: err.Error()}
	}
	defer conn.Close()
	client := runtimeapi.NewRuntimeServiceClient(conn)
	name := fmt.Sprintf("cricheck-%d", time.Now().UnixNano())
	logDir = filepath.Join(logDir, name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return result{Stage: "sandbox", Error: err.Error()}
	}
	nodeNetwork := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}
	sandboxConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "cricheck", Uid: name},
		LogDirectory: logDir,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			// systemd cgroups (SystemdCgroup = true): a slice, as the kubelet's cgroup driver would give
			CgroupParent:    "cricheck.slice",
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: nodeNetwork, Privileged: privileged},
		},
	}
	sandbox, err := client.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig, RuntimeHandler: handler})
	if err != nil {
		return result{Stage: "sandbox", Error: err.Error()}
	}
	defer func() {
		_, _ = client.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: sandbox.PodSandboxId})
		_, _ = client.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sandbox.PodSandboxId})
	}()
	var kv []*runtimeapi.KeyValue
	for _, e := range envs {
		key, value, _ := strings.Cut(e, "=")
		kv = append(kv, &runtimeapi.KeyValue{Key: key, Value: value})
	}
	var mounts []*runtimeapi.Mount
	if nvidiaAll {
		mounts = append(mounts, &runtimeapi.Mount{HostPath: "/dev/null", ContainerPath: "/var/run/nvidia-container-devices/all", Readonly: true})
	}
	containerConfig := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "check"},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  []string{"sh", "-c", command},
		Envs:     kv,
		Mounts:   mounts,
		LogPath:  "check.log",
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Privileged: privileged, NamespaceOptions: nodeNetwork},
		},
	}
	created, err := client.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: sandbox.PodSandboxId, Config: containerConfig, SandboxConfig: sandboxConfig,
	})
	if err != nil {
		return result{Stage: "create", Error: err.Error()}
	}
	defer func() {
		_, _ = client.RemoveContainer(context.Background(), &runtimeapi.RemoveContainerRequest{ContainerId: created.ContainerId})
	}()
	if _, err := client.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: created.ContainerId}); err != nil {
		return result{Stage: "start", Error: err.Error()}
	}
	for {
		status, err := client.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: created.ContainerId})
		if err != nil {
			return result{Stage: "wait", Error: err.Error()}
		}
		if status.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			log, _ := os.ReadFile(filepath.Join(logDir, "check.log"))
			return result{Stage: "exited", ExitCode: status.Status.ExitCode, Log: messages(string(log))}
		}
		select {
		case <-ctx.Done():
			return result{Stage: "wait", Error: "the container did not exit within 120s"}
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// messages drops the CRI log prefix ("<time> <stream> <tag> ") of each line.
func messages(log string) string {
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(log, "\n"), "\n") {
		if parts := strings.SplitN(line, " ", 4); len(parts) == 4 {
			lines = append(lines, parts[3])
		}
	}
	return strings.Join(lines, "\n")
}
