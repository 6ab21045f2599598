//! Field tables of the messages kubectl's generators send (`kubectl create namespace|
//! deployment|serviceaccount|configmap|secret|service|role|rolebinding|clusterrole|
//! clusterrolebinding`), with upstream's field numbers (`k8s.io/api/*/v1/generated.proto`
//! and `apimachinery/pkg/apis/meta/v1/generated.proto`, Kubernetes 1.32).

use super::Kind::{
    Bool, BytesMap, Inline, Int, IntOrStr, Msg, Msgs, PBool, PInt, PStr, QuantityMap, Skip, Str,
    StrMap, Strs, Time,
};
use super::Schema;

const OWNER_REFERENCE: Schema = Schema {
    name: "OwnerReference",
    fields: &[
        (1, "kind", Str),
        (3, "name", Str),
        (4, "uid", Str),
        (5, "apiVersion", Str),
        (6, "controller", PBool),
        (7, "blockOwnerDeletion", PBool),
    ],
};

const OBJECT_META: Schema = Schema {
    name: "ObjectMeta",
    fields: &[
        (1, "name", Str),
        (2, "generateName", Str),
        (3, "namespace", Str),
        (4, "selfLink", Str),
        (5, "uid", Str),
        (6, "resourceVersion", Str),
        (7, "generation", Int),
        (8, "creationTimestamp", Time),
        (9, "deletionTimestamp", Time),
        (10, "deletionGracePeriodSeconds", PInt),
        (11, "labels", StrMap),
        (12, "annotations", StrMap),
        (13, "ownerReferences", Msgs(&OWNER_REFERENCE)),
        (14, "finalizers", Strs),
    ],
};

const LABEL_SELECTOR_REQUIREMENT: Schema = Schema {
    name: "LabelSelectorRequirement",
    fields: &[(1, "key", Str), (2, "operator", Str), (3, "values", Strs)],
};

const LABEL_SELECTOR: Schema = Schema {
    name: "LabelSelector",
    fields: &[
        (1, "matchLabels", StrMap),
        (2, "matchExpressions", Msgs(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};

const LOCAL_OBJECT_REFERENCE: Schema = Schema {
    name: "LocalObjectReference",
    fields: &[(1, "name", Str)],
};

const OBJECT_REFERENCE: Schema = Schema {
    name: "ObjectReference",
    fields: &[
        (1, "kind", Str),
        (2, "namespace", Str),
        (3, "name", Str),
        (4, "uid", Str),
        (5, "apiVersion", Str),
        (6, "resourceVersion", Str),
        (7, "fieldPath", Str),
    ],
};

const CONTAINER_PORT: Schema = Schema {
    name: "ContainerPort",
    fields: &[
        (1, "name", Str),
        (2, "hostPort", Int),
        (3, "containerPort", Int),
        (4, "protocol", Str),
        (5, "hostIP", Str),
    ],
};

const OBJECT_FIELD_SELECTOR: Schema = Schema {
    name: "ObjectFieldSelector",
    fields: &[(1, "apiVersion", Str), (2, "fieldPath", Str)],
};

/// `ConfigMapKeySelector` and `SecretKeySelector` embed `LocalObjectReference` as field 1;
/// Go's JSON inlines its `name`.
const KEY_REF: Schema = Schema {
    name: "KeySelector",
    fields: &[
        (1, "name", Inline(&LOCAL_OBJECT_REFERENCE)),
        (2, "key", Str),
        (3, "optional", PBool),
    ],
};

const ENV_VAR_SOURCE: Schema = Schema {
    name: "EnvVarSource",
    fields: &[
        (1, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        (3, "configMapKeyRef", Msg(&KEY_REF)),
        (4, "secretKeyRef", Msg(&KEY_REF)),
    ],
};

const ENV_VAR: Schema = Schema {
    name: "EnvVar",
    fields: &[
        (1, "name", Str),
        (2, "value", Str),
        (3, "valueFrom", Msg(&ENV_VAR_SOURCE)),
    ],
};

const RESOURCE_REQUIREMENTS: Schema = Schema {
    name: "ResourceRequirements",
    fields: &[(1, "limits", QuantityMap), (2, "requests", QuantityMap)],
};

const VOLUME_MOUNT: Schema = Schema {
    name: "VolumeMount",
    fields: &[
        (1, "name", Str),
        (2, "readOnly", Bool),
        (3, "mountPath", Str),
        (4, "subPath", Str),
    ],
};

const CONTAINER: Schema = Schema {
    name: "Container",
    fields: &[
        (1, "name", Str),
        (2, "image", Str),
        (3, "command", Strs),
        (4, "args", Strs),
        (5, "workingDir", Str),
        (6, "ports", Msgs(&CONTAINER_PORT)),
        (7, "env", Msgs(&ENV_VAR)),
        (8, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        (9, "volumeMounts", Msgs(&VOLUME_MOUNT)),
        (13, "terminationMessagePath", Str),
        (14, "imagePullPolicy", Str),
        (16, "stdin", Bool),
        (17, "stdinOnce", Bool),
        (18, "tty", Bool),
        (20, "terminationMessagePolicy", Str),
    ],
};

const TOLERATION: Schema = Schema {
    name: "Toleration",
    fields: &[
        (1, "key", Str),
        (2, "operator", Str),
        (3, "value", Str),
        (4, "effect", Str),
        (5, "tolerationSeconds", PInt),
    ],
};

const POD_SPEC: Schema = Schema {
    name: "PodSpec",
    fields: &[
        (2, "containers", Msgs(&CONTAINER)),
        (3, "restartPolicy", Str),
        (4, "terminationGracePeriodSeconds", PInt),
        (5, "activeDeadlineSeconds", PInt),
        (6, "dnsPolicy", Str),
        (7, "nodeSelector", StrMap),
        (8, "serviceAccountName", Str),
        (9, "serviceAccount", Str),
        (10, "nodeName", Str),
        (11, "hostNetwork", Bool),
        (12, "hostPID", Bool),
        (13, "hostIPC", Bool),
        (15, "imagePullSecrets", Msgs(&LOCAL_OBJECT_REFERENCE)),
        (16, "hostname", Str),
        (17, "subdomain", Str),
        (19, "schedulerName", Str),
        (20, "initContainers", Msgs(&CONTAINER)),
        (21, "automountServiceAccountToken", PBool),
        (22, "tolerations", Msgs(&TOLERATION)),
        (24, "priorityClassName", Str),
        (25, "priority", PInt),
        (27, "shareProcessNamespace", PBool),
        (29, "runtimeClassName", PStr),
        (30, "enableServiceLinks", PBool),
        (31, "preemptionPolicy", PStr),
    ],
};

const POD_TEMPLATE_SPEC: Schema = Schema {
    name: "PodTemplateSpec",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&POD_SPEC)),
    ],
};

const ROLLING_UPDATE_DEPLOYMENT: Schema = Schema {
    name: "RollingUpdateDeployment",
    fields: &[(1, "maxUnavailable", IntOrStr), (2, "maxSurge", IntOrStr)],
};

const DEPLOYMENT_STRATEGY: Schema = Schema {
    name: "DeploymentStrategy",
    fields: &[
        (1, "type", Str),
        (2, "rollingUpdate", Msg(&ROLLING_UPDATE_DEPLOYMENT)),
    ],
};

const DEPLOYMENT_SPEC: Schema = Schema {
    name: "DeploymentSpec",
    fields: &[
        (1, "replicas", PInt),
        (2, "selector", Msg(&LABEL_SELECTOR)),
        (3, "template", Msg(&POD_TEMPLATE_SPEC)),
        (4, "strategy", Msg(&DEPLOYMENT_STRATEGY)),
        (5, "minReadySeconds", Int),
        (6, "revisionHistoryLimit", PInt),
        (7, "paused", Bool),
        (9, "progressDeadlineSeconds", PInt),
    ],
};

const DEPLOYMENT: Schema = Schema {
    name: "Deployment",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&DEPLOYMENT_SPEC)),
        (3, "status", Skip),
    ],
};

const POD: Schema = Schema {
    name: "Pod",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&POD_SPEC)),
        (3, "status", Skip),
    ],
};

const NAMESPACE_SPEC: Schema = Schema {
    name: "NamespaceSpec",
    fields: &[(1, "finalizers", Strs)],
};

const NAMESPACE: Schema = Schema {
    name: "Namespace",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&NAMESPACE_SPEC)),
        (3, "status", Skip),
    ],
};

const SERVICE_ACCOUNT: Schema = Schema {
    name: "ServiceAccount",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "secrets", Msgs(&OBJECT_REFERENCE)),
        (3, "imagePullSecrets", Msgs(&LOCAL_OBJECT_REFERENCE)),
        (4, "automountServiceAccountToken", PBool),
    ],
};

const CONFIG_MAP: Schema = Schema {
    name: "ConfigMap",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "data", StrMap),
        (3, "binaryData", BytesMap),
        (4, "immutable", PBool),
    ],
};

const SECRET: Schema = Schema {
    name: "Secret",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "data", BytesMap),
        (3, "type", Str),
        (4, "stringData", StrMap),
        (5, "immutable", PBool),
    ],
};

const SERVICE_PORT: Schema = Schema {
    name: "ServicePort",
    fields: &[
        (1, "name", Str),
        (2, "protocol", Str),
        (3, "port", Int),
        (4, "targetPort", IntOrStr),
        (5, "nodePort", Int),
        (6, "appProtocol", PStr),
    ],
};

const SERVICE_SPEC: Schema = Schema {
    name: "ServiceSpec",
    fields: &[
        (1, "ports", Msgs(&SERVICE_PORT)),
        (2, "selector", StrMap),
        (3, "clusterIP", Str),
        (4, "type", Str),
        (5, "externalIPs", Strs),
        (7, "sessionAffinity", Str),
        (8, "loadBalancerIP", Str),
        (9, "loadBalancerSourceRanges", Strs),
        (10, "externalName", Str),
        (11, "externalTrafficPolicy", Str),
        (12, "healthCheckNodePort", Int),
        (13, "publishNotReadyAddresses", Bool),
        (17, "ipFamilyPolicy", PStr),
        (18, "clusterIPs", Strs),
        (19, "ipFamilies", Strs),
        (20, "allocateLoadBalancerNodePorts", PBool),
        (21, "loadBalancerClass", PStr),
        (22, "internalTrafficPolicy", PStr),
        (23, "trafficDistribution", PStr),
    ],
};

const SERVICE: Schema = Schema {
    name: "Service",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&SERVICE_SPEC)),
        (3, "status", Skip),
    ],
};

const POLICY_RULE: Schema = Schema {
    name: "PolicyRule",
    fields: &[
        (1, "verbs", Strs),
        (2, "apiGroups", Strs),
        (3, "resources", Strs),
        (4, "resourceNames", Strs),
        (5, "nonResourceURLs", Strs),
    ],
};

const AGGREGATION_RULE: Schema = Schema {
    name: "AggregationRule",
    fields: &[(1, "clusterRoleSelectors", Msgs(&LABEL_SELECTOR))],
};

const ROLE: Schema = Schema {
    name: "Role",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "rules", Msgs(&POLICY_RULE)),
    ],
};

const CLUSTER_ROLE: Schema = Schema {
    name: "ClusterRole",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "rules", Msgs(&POLICY_RULE)),
        (3, "aggregationRule", Msg(&AGGREGATION_RULE)),
    ],
};

const SUBJECT: Schema = Schema {
    name: "Subject",
    fields: &[
        (1, "kind", Str),
        (2, "apiGroup", Str),
        (3, "name", Str),
        (4, "namespace", Str),
    ],
};

const ROLE_REF: Schema = Schema {
    name: "RoleRef",
    fields: &[(1, "apiGroup", Str), (2, "kind", Str), (3, "name", Str)],
};

const ROLE_BINDING: Schema = Schema {
    name: "RoleBinding",
    fields: &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "subjects", Msgs(&SUBJECT)),
        (3, "roleRef", Msg(&ROLE_REF)),
    ],
};

/// The table of `kind` in `apiVersion`, when this server decodes it from protobuf.
pub fn schema_of(api_version: &str, kind: &str) -> Option<&'static Schema> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("v1", "ConfigMap") => &CONFIG_MAP,
        ("v1", "Secret") => &SECRET,
        ("v1", "Service") => &SERVICE,
        ("v1", "Pod") => &POD,
        ("apps/v1", "Deployment") => &DEPLOYMENT,
        ("rbac.authorization.k8s.io/v1", "Role") => &ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => &CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => &ROLE_BINDING,
        _ => return None,
    })
}
