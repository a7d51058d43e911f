// libvmrt.so is the whole-archive link of vmrt_runtime, vmrt_kmem and vmrt_vm.
