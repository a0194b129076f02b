"""A local stand-in for the MTT Business PBX: OAuth server, Open API methods and call notifications.

Import the WSGI app from :mod:`sandbox.app` and the test helpers from :mod:`sandbox.testing`; this
package's ``__init__`` stays import-free so Django can load the app config without werkzeug work.
"""
