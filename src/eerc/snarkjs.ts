// The indexer (Ponder) runs every module under src/ as it starts. snarkjs takes a noticeable part
// of a second to load, so the modules that prove or build keys load it when they first need it.
export const loadSnarkjs = () => import("snarkjs");
