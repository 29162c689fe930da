"""Labels the operator puts on what it owns, so it and its users can select them."""

VM_LABEL = "virtstack.io/vm"
GROUP_LABEL = "virtstack.io/group"
MANAGED_BY = {"app.kubernetes.io/managed-by": "virtstack"}
