"""What the npm package lost and KubeVirt's/CDI's CRD generators enforce, by model name.

Each value is deep-merged into the schema of that model wherever it appears
(`converter.merge`; a `None` value removes the key). Written from the Go types'
markers (`+nullable`, `+listType`, `+kubebuilder:validation:*`, `+structType=atomic`,
`+default`), not copied from upstream CRDs. The CDI half of the package names core
types without the `K8sIoApi...` prefix, hence the two spellings of some models.
"""

NULLABLE = {"nullable": True}
NULLABLE_TIME = {"format": "date-time", "nullable": True, "type": "string"}
CONDITION_TIMES = {"properties": {"lastProbeTime": NULLABLE_TIME, "lastTransitionTime": NULLABLE_TIME}}
EMBEDDED_METADATA = {"nullable": True, "x-kubernetes-preserve-unknown-fields": True}
REQUIRED_INT_OR_STRING_PORT = {
    "properties": {"port": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}},
    "required": ["port"],
}
ATOMIC = {"x-kubernetes-map-type": "atomic"}
SET = {"x-kubernetes-list-type": "set"}
MAX_256 = {"maxItems": 256}
MAP_BY_NAME = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}

PATCHES: dict[str, dict] = {
    # *metav1.Time timestamps are swagger ["string","null"], which the generator dropped.
    "V1VirtualMachineCondition": CONDITION_TIMES,
    # Same dropped timestamps.
    "V1VirtualMachineInstanceCondition": CONDITION_TIMES,
    # Same dropped timestamps.
    "V1VirtualMachineInstanceMigrationCondition": CONDITION_TIMES,
    # Same dropped timestamps (snapshot and restore conditions).
    "V1beta1Condition": CONDITION_TIMES,
    # The required IntOrString port is swagger ["integer","string"], which the generator dropped.
    "K8sIoApiCoreV1HTTPGetAction": REQUIRED_INT_OR_STRING_PORT,
    # Same dropped port.
    "K8sIoApiCoreV1TCPSocketAction": REQUIRED_INT_OR_STRING_PORT,
    # Template metadata is `+nullable` and `+kubebuilder:pruning:PreserveUnknownFields`.
    "V1VirtualMachineInstanceTemplateSpec": {"properties": {"metadata": EMBEDDED_METADATA}},
    # Same metadata markers; the template itself and its status are `+nullable`.
    "V1DataVolumeTemplateSpec": {"nullable": True, "properties": {"metadata": EMBEDDED_METADATA, "status": NULLABLE}},
    # The VM embedded in snapshot content has the same metadata markers.
    "V1beta1VirtualMachine": {"properties": {"metadata": EMBEDDED_METADATA}},
    # PVC metadata in snapshot content is only `+kubebuilder:pruning:PreserveUnknownFields`.
    "V1beta1PersistentVolumeClaim": {"properties": {"metadata": {"x-kubernetes-preserve-unknown-fields": True}}},
    # Clock inlines its offset union and is kept with `+kubebuilder:pruning:PreserveUnknownFields`.
    "V1Clock": {"x-kubernetes-preserve-unknown-fields": True},
    # rebootPolicy has `+kubebuilder:validation:Enum=Reboot;Terminate`.
    "V1DomainSpec": {"properties": {"rebootPolicy": {"enum": ["Reboot", "Terminate"]}}},
    # memLock has `+kubebuilder:validation:Enum=Required;NotRequired`.
    "V1ReservedOverhead": {"properties": {"memLock": {"enum": ["NotRequired", "Required"]}}},
    # CDI's contentType has `+kubebuilder:validation:Enum="kubevirt";"archive"`.
    "V1beta1DataVolumeSpec": {"properties": {"contentType": {"enum": ["kubevirt", "archive"]}}},
    # Pointer fields are `+nullable`; printableStatus has `+kubebuilder:default=Stopped`.
    "V1VirtualMachineStatus": {
        "properties": {
            "changedBlockTracking": NULLABLE,
            "instancetypeRef": NULLABLE,
            "memoryDumpRequest": NULLABLE,
            "preferenceRef": NULLABLE,
            "startFailure": NULLABLE,
            "printableStatus": {"default": "Stopped"},
        }
    },
    # changedBlockTracking is `+nullable`; deviceStatus is newer than v1.8.0, which prunes it.
    "V1VirtualMachineInstanceStatus": {"properties": {"changedBlockTracking": NULLABLE, "deviceStatus": None}},
    # backupStatus is `+nullable`.
    "V1ChangedBlockTrackingStatus": {"properties": {"backupStatus": NULLABLE}},
    # Migration start/end *metav1.Time are `+nullable`.
    "V1VirtualMachineInstanceMigrationState": {"properties": {"startTimestamp": NULLABLE, "endTimestamp": NULLABLE}},
    # creationTime is `+nullable`; indications is `+listType=set`.
    "V1beta1VirtualMachineSnapshotStatus": {"properties": {"creationTime": NULLABLE, "indications": SET}},
    # creationTime is `+nullable`.
    "V1beta1VirtualMachineSnapshotContentStatus": {"properties": {"creationTime": NULLABLE}},
    # creationTime is `+nullable`.
    "V1beta1VolumeSnapshotStatus": {"properties": {"creationTime": NULLABLE}},
    # Volume name lists are `+listType=set`.
    "V1beta1SnapshotVolumesLists": {"properties": {"excludedVolumes": SET, "includedVolumes": SET}},
    # deletedDataVolumes is `+listType=set`.
    "V1beta1VirtualMachineRestoreStatus": {"properties": {"deletedDataVolumes": SET}},
    # users is `+listType=set`.
    "V1QemuGuestAgentSSHPublicKeyAccessCredentialPropagation": {"properties": {"users": SET}},
    # Lists capped by `+kubebuilder:validation:MaxItems=256`; claims, spread constraints and
    # utility volumes are `+listType=map` with `+listMapKey`s.
    "V1VirtualMachineInstanceSpec": {
        "properties": {
            "accessCredentials": MAX_256,
            "networks": MAX_256,
            "volumes": MAX_256,
            "utilityVolumes": {**MAX_256, **MAP_BY_NAME},
            "resourceClaims": MAP_BY_NAME,
            "topologySpreadConstraints": {
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["topologyKey", "whenUnsatisfiable"],
            },
        }
    },
    # disks and interfaces are capped by `+kubebuilder:validation:MaxItems=256`.
    "V1Devices": {"properties": {"disks": MAX_256, "interfaces": MAX_256}},
    # containerPath volumes are read-only absolute paths, enforced by CEL `XValidation` rules.
    "V1ContainerPathVolumeSource": {
        "properties": {
            "path": {
                "maxLength": 4096,
                "x-kubernetes-validations": [
                    {"message": "path must be absolute (start with '/')", "rule": "self.startsWith('/')"},
                    {"message": "path must not contain '..'", "rule": "!self.contains('..')"},
                ],
            },
            "readOnly": {
                "default": True,
                "x-kubernetes-validations": [
                    {"message": "readOnly must be true, write access is not supported", "rule": "self == true"}
                ],
            },
        }
    },
    # CDI's Percent is a fraction 0..1 with up to 3 decimals (`+kubebuilder:validation:Pattern`).
    "V1PersistentVolumeClaimInfo": {"properties": {"filesystemOverhead": {"pattern": r"^(0(?:\.\d{1,3})?|1)$"}}},
    # `+structType=atomic`; name has `+default=""`.
    "K8sIoApiCoreV1LocalObjectReference": {**ATOMIC, "properties": {"name": {"default": ""}}},
    # Inlines LocalObjectReference, so inherits its markers.
    "V1ConfigMapVolumeSource": {**ATOMIC, "properties": {"name": {"default": ""}}},
    # `+structType=atomic`.
    "K8sIoApiCoreV1NodeSelector": ATOMIC,
    # `+structType=atomic`.
    "K8sIoApiCoreV1NodeSelectorTerm": ATOMIC,
    # `+structType=atomic`.
    "K8sIoApiCoreV1ObjectFieldSelector": ATOMIC,
    # `+structType=atomic`.
    "K8sIoApiCoreV1ResourceFieldSelector": ATOMIC,
    # `+structType=atomic`.
    "K8sIoApiCoreV1TypedLocalObjectReference": ATOMIC,
    # `+structType=atomic` (CDI spelling).
    "V1TypedLocalObjectReference": ATOMIC,
    # `+structType=atomic`.
    "K8sIoApimachineryPkgApisMetaV1LabelSelector": ATOMIC,
    # `+structType=atomic` (CDI spelling).
    "V1LabelSelector": ATOMIC,
}
