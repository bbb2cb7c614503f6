// The Python extension module dcn_det._C. It exports no Python functions: the
// operators are registered with the PyTorch dispatcher (torch.ops.dcn_det.*) by
// the static initialisers of the other translation units when this library is
// loaded. Python.h alone keeps this file cheap to compile.
#include <Python.h>

static struct PyModuleDef dcn_det_module = {PyModuleDef_HEAD_INIT, "_C",
                                            "dcn_det compiled operators", -1, nullptr};

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&dcn_det_module); }
