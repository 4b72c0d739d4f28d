# The native kernels (gemm.c). Built by scripts/build-native.mjs (npm's postinstall), which copies the
# addon next to native.ts as inkling-native.node; the engine runs without it (WebAssembly kernels).
{
  "targets": [
    {
      "target_name": "inkling_native",
      "sources": ["gemm.c"],
      # Exactly f32-fma.wat's roundings: no multiply and add fused where the source keeps them apart.
      "cflags": ["-O3", "-ffp-contract=off"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-ffp-contract=off"] },
      "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/fp:precise"] } }
    }
  ]
}
