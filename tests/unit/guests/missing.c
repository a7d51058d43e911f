/* missing.c — a guest importing a function nobody provides. */
int no_such_host_function_xyz(int);
int f(int a) { return no_such_host_function_xyz(a); }
