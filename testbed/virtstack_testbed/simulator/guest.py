"""What the simulated guest does: the test-injection API (pure).

KubeVirt learns about the guest from libvirt domain events and the QEMU guest agent, both read by
virt-handler (kubevirt/kubevirt pkg/virt-handler/vm.go; agent: pkg/virt-launcher/virtwrap/agent-poller).
Here there is no guest, so tests say what it does through annotations on the VMI, or on the VM's
`spec.template.metadata.annotations` (copied to every VMI the VM creates, as KubeVirt copies them):

- `simulator.virtstack.io/guest: shutdown` -- the guest powers off: a Running VMI ends `Succeeded`
  (virt-handler: domain Shutoff with reason Shutdown -> Succeeded).
- `simulator.virtstack.io/guest: crash` -- the guest crashes: a Running VMI ends `Failed`
  (domain Crashed / guest panic -> Failed).
- `simulator.virtstack.io/guest: boot-failure` -- the domain never starts: a Scheduled VMI ends
  `Failed` without reaching Running (feeds the VM's `startFailure` back-off and CrashLoopBackOff).
- `simulator.virtstack.io/guest-agent: "true"` -- a QEMU guest agent is connected while the VMI runs:
  condition `AgentConnected=True`; removing the annotation (or any other value) removes the condition,
  as KubeVirt removes rather than falsifies it. SSH keys or passwords the VMI propagates through the
  agent (`accessCredentials[].*.propagationMethod.qemuGuestAgent`) are then in sync:
  `AccessCredentialsSynchronized=True`; without the agent the condition is False.
"""

from __future__ import annotations

GUEST_ANNOTATION = "simulator.virtstack.io/guest"
AGENT_ANNOTATION = "simulator.virtstack.io/guest-agent"
SYNCHRONIZED = "AccessCredentialsSynchronized"

SHUTDOWN = "shutdown"
CRASH = "crash"
BOOT_FAILURE = "boot-failure"
GUEST_EVENTS = (SHUTDOWN, CRASH, BOOT_FAILURE)


def _annotations(vmi: dict) -> dict:
    return vmi["metadata"].get("annotations") or {}


def guest_event(vmi: dict) -> str | None:
    """The injected guest event, if any (unknown values are ignored, as a guest that keeps running)."""
    event = _annotations(vmi).get(GUEST_ANNOTATION)
    return event if event in GUEST_EVENTS else None


def agent_connected(vmi: dict) -> bool:
    return _annotations(vmi).get(AGENT_ANNOTATION) == "true"


def access_credentials_synchronized(vmi: dict) -> dict | None:
    """virt-handler's AccessCredentialsSynchronized for credentials the guest agent writes (None when
    there are none). The agent writes the Secret's current content at once here; on KubeVirt a change
    of the Secret reaches the launcher within the kubelet's Secret sync period, then the agent. The
    False message is the simulator's wording."""
    methods = [
        (credential.get("sshPublicKey") or credential.get("userPassword") or {}).get("propagationMethod") or {}
        for credential in vmi["spec"].get("accessCredentials") or []
    ]
    if not any("qemuGuestAgent" in method for method in methods):
        return None
    if agent_connected(vmi):
        return {"type": SYNCHRONIZED, "status": "True"}
    return {
        "type": SYNCHRONIZED,
        "status": "False",
        "message": "the guest agent is not connected: credentials cannot be written into the guest",
    }
