"""`seal-agent bench ...`: the benchmark group. Each benchmark adds its command to `bench_app` in its own module."""
import typer

bench_app = typer.Typer(help="Benchmarks: knowledge incorporation (SEAL's Table 2), the inner loop's speed.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
