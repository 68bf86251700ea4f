//! The adapter that serves the engine from a reactor: [`Gateway`] as an [`App`], and the
//! reactor's [`Ctx`] as the engine's [`Link`]. The only file of the engine, with the
//! cross-thread remote, that knows the reactor.

use super::core::GwConn;
use super::engine::{Gateway, GwTimer};
use super::handler::Handler;
use super::link::Link;
use super::remote::GwCommand;
use crate::close::CloseCode;
use crate::http::{Request, Response};
use crate::reactor::{Accept, App, Closed, Message};
use crate::reactor::{ConnId, Ctx, SendError};
use crate::time::Millis;
use crate::timer::TimerId;
use crate::ws::SharedPayload;
use std::net::SocketAddr;

impl<H: Handler> Link<H> for Ctx<'_, Gateway<H>> {
    fn now(&self) -> Millis {
        Ctx::now(self)
    }

    fn send_text(&mut self, id: ConnId, text: &str) -> Result<(), SendError> {
        Ctx::send_text(self, id, text)
    }

    fn send_prefixed(
        &mut self,
        id: ConnId,
        prefix: &[u8],
        body: &SharedPayload,
    ) -> Result<(), SendError> {
        Ctx::send_prefixed(self, id, prefix, body)
    }

    fn close(&mut self, id: ConnId, code: CloseCode, reason: &str) {
        Ctx::close(self, id, code, reason);
    }

    fn conn(&mut self, id: ConnId) -> Option<&mut GwConn<H::Session>> {
        self.state(id)
    }

    fn conn_ref(&self, id: ConnId) -> Option<&GwConn<H::Session>> {
        self.state_ref(id)
    }

    fn connections(&self) -> Vec<ConnId> {
        Ctx::connections(self).collect()
    }

    fn connection_count(&self) -> usize {
        Ctx::connection_count(self)
    }

    fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        Ctx::peer_addr(self, id)
    }

    fn set_timer(&mut self, at: Millis, timer: GwTimer<H::Timer>) -> TimerId {
        Ctx::set_timer(self, at, timer)
    }

    fn cancel_timer(&mut self, id: TimerId) -> Option<GwTimer<H::Timer>> {
        Ctx::cancel_timer(self, id)
    }

    fn reschedule_timer(&mut self, id: TimerId, at: Millis) -> bool {
        Ctx::reschedule_timer(self, id, at)
    }

    fn is_shutting_down(&self) -> bool {
        Ctx::is_shutting_down(self)
    }
}

impl<H: Handler> App for Gateway<H> {
    type Conn = GwConn<H::Session>;
    type Timer = GwTimer<H::Timer>;
    type Command = GwCommand<H::Command>;

    fn on_upgrade(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        id: ConnId,
        request: &Request<'_, '_>,
    ) -> Accept<Self::Conn> {
        match self.handle_upgrade(ctx, id, request) {
            Ok(state) => Accept::new(state),
            Err(response) => Accept::No(response),
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId) {
        self.handle_open(ctx, id);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, message: Message<'_>) {
        match message {
            Message::Text(text) => self.handle_message(ctx, id, text),
            Message::Binary(_) => self.handle_binary(ctx, id),
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, state: Self::Conn, _why: Closed) {
        self.handle_close(ctx, id, state);
    }

    fn on_http(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        _id: ConnId,
        request: &Request<'_, '_>,
        body: &[u8],
    ) -> Response {
        self.handle_http(ctx, request, body)
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Self::Timer) {
        self.handle_timer(ctx, timer);
    }

    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, command: Self::Command) {
        self.handle_command(ctx, command);
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.handle_shutdown(ctx);
    }
}
