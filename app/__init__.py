"""Order processing platform: merchant JSON API, operations dashboard and saga workers.

Deliberately empty: importing `app.domain` must not drag Flask in. The app is built by
`app.factory.create_app()`.
"""
