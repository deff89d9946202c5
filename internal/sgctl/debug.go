package sgctl

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
	"sessiongate.dev/sessiongate/internal/kubectldebug"
)

// Debug asks the gateway to create a kubectl-debug object (op ephemeral,
// copy or node) through a debug session.
func (c *Client) Debug(ctx context.Context, session, op string, req any) (*api.DebugResult, error) {
	res := &api.DebugResult{}
	err := c.do(ctx, http.MethodPost, "/api/v1/sessions/"+url.PathEscape(session)+"/debug/"+op, req, res)
	return res, err
}

func debugCommand(client func() (*Client, error)) *cobra.Command {
	var session, namespace, image string
	cmd := &cobra.Command{
		Use:   "debug ephemeral|copy|node",
		Short: "Debug a pod or a node through a debug session, under its template's rules",
		Long: "Create what kubectl debug creates — an ephemeral container in a pod, a copy of a pod, or a pod on a node — " +
			"checked by the gateway against the debug session's template before anything reaches the cluster, and removed at the end of the session. " +
			"Without --session, your only Active debug session that allows kubectl debug is used.",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&session, "session", "", "Debug session to act through (default: your only Active one).")
	pf.StringVar(&image, "image", "", "Image of the debug container (the template's images only).")
	var target, name, copyName string
	var hostNamespaces bool

	run := func(op string, req func(args []string) any) func(*cobra.Command, []string) error {
		return withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			s, err := pickDebugSession(cmd.Context(), c, session)
			if err != nil {
				return err
			}
			res, err := c.Debug(cmd.Context(), s, op, req(args))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "session %s: created %s %s/%s, container %s (image %s)\n", s, res.Kind, res.Namespace, res.Pod, res.Container, res.Image)
			fmt.Fprintf(cmd.ErrOrStderr(), "attach with: sgctl kubeconfig %s -o %s.kubeconfig && %s\n", s, s, kubectldebug.AttachCommand(s+".kubeconfig", res.Namespace, res.Pod, res.Container))
			fmt.Fprintf(cmd.OutOrStdout(), "%s/%s\n", res.Pod, res.Container)
			return nil
		})
	}
	ephemeral := &cobra.Command{
		Use:   "ephemeral POD -n NAMESPACE --image IMAGE [--target CONTAINER]",
		Short: "Add an ephemeral debug container to a pod",
		Args:  cobra.ExactArgs(1),
		RunE: run("ephemeral", func(args []string) any {
			return &api.DebugEphemeralRequest{Namespace: namespace, Pod: args[0], Image: image, Target: target, Name: name}
		}),
	}
	ephemeral.Flags().StringVar(&target, "target", "", "Container whose processes the debug container sees.")
	ephemeral.Flags().StringVar(&name, "container", "", "Name of the debug container (default: debugger-xxxxx).")
	cp := &cobra.Command{
		Use:   "copy POD -n NAMESPACE --image IMAGE [--copy-to NAME]",
		Short: "Copy a pod with a debug container added (removed at the end of the session)",
		Args:  cobra.ExactArgs(1),
		RunE: run("copy", func(args []string) any {
			return &api.DebugCopyRequest{Namespace: namespace, Pod: args[0], Image: image, Name: copyName}
		}),
	}
	cp.Flags().StringVar(&copyName, "copy-to", "", "Name of the copy (default: POD-xxxxx).")
	node := &cobra.Command{
		Use:   "node NODE --image IMAGE [--host-namespaces]",
		Short: "Run a debug pod on a node (in the session's debug namespace)",
		Args:  cobra.ExactArgs(1),
		RunE: run("node", func(args []string) any {
			return &api.DebugNodeRequest{Node: strings.TrimPrefix(args[0], "node/"), Image: image, HostNamespaces: hostNamespaces}
		}),
	}
	node.Flags().BoolVar(&hostNamespaces, "host-namespaces", false, "Use the host's PID, network and IPC namespaces, with its root at /host (where the template allows it).")
	for _, sub := range []*cobra.Command{ephemeral, cp} {
		sub.Flags().StringVarP(&namespace, "namespace", "n", "", "Namespace of the pod (the session's debug namespace).")
	}
	cmd.AddCommand(ephemeral, cp, node)
	return cmd
}

// pickDebugSession is name, or the caller's only Active session whose
// template allows kubectl debug.
func pickDebugSession(ctx context.Context, c *Client, name string) (string, error) {
	if name != "" {
		return name, nil
	}
	l, err := c.List(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, s := range l.Items {
		if d := s.Status.Debug; s.Status.Phase == v1alpha1.PhaseActive && d != nil && (d.Mode == v1alpha1.ModeKubectlDebug || d.Mode == v1alpha1.ModeHybrid) {
			found = append(found, s.Name)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("you have no Active debug session that allows kubectl debug: request one with a kubectl-debug template, or name it with --session")
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("you have %d Active debug sessions (%s): name one with --session", len(found), strings.Join(found, ", "))
}
